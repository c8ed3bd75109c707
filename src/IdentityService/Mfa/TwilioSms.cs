using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace IdentityService.Mfa;

/// <summary>The Twilio account text messages are sent from (<c>Sms:Twilio</c>). Without an account SID, no SMS is sent.</summary>
public sealed class TwilioOptions
{
    public const string Section = "Sms:Twilio";

    public string? AccountSid { get; set; }

    public string? AuthToken { get; set; }

    /// <summary>The sending number (E.164) or a Messaging Service SID (<c>MG...</c>).</summary>
    public string? From { get; set; }

    /// <summary>Twilio's REST API; a test points it at a local server that speaks the same API.</summary>
    public string BaseUrl { get; set; } = "https://api.twilio.com";

    public bool IsConfigured => !string.IsNullOrWhiteSpace(AccountSid) && !string.IsNullOrWhiteSpace(AuthToken) && !string.IsNullOrWhiteSpace(From);
}

/// <summary>
/// Sends a text message through Twilio's Messages API (<c>POST /2010-04-01/Accounts/{AccountSid}/Messages.json</c>,
/// HTTP Basic with the account SID and auth token, form fields <c>To</c>, <c>From</c> or <c>MessagingServiceSid</c>,
/// <c>Body</c>), as Twilio documents it; its SDK is not used.
/// </summary>
public sealed class TwilioSms(HttpClient http, IOptions<TwilioOptions> options, ILogger<TwilioSms> logger)
{
    public bool IsConfigured => options.Value.IsConfigured;

    /// <summary>Sends one message; true once Twilio accepted it (201), false otherwise (the reason is logged).</summary>
    public async Task<bool> SendAsync(string to, string body, CancellationToken cancellationToken)
    {
        var twilio = options.Value;
        if (!twilio.IsConfigured)
        {
            return false;
        }

        var from = twilio.From!;
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{twilio.BaseUrl.TrimEnd('/')}/2010-04-01/Accounts/{Uri.EscapeDataString(twilio.AccountSid!)}/Messages.json")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["To"] = to,
                [from.StartsWith("MG", StringComparison.Ordinal) ? "MessagingServiceSid" : "From"] = from,
                ["Body"] = body,
            }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{twilio.AccountSid}:{twilio.AuthToken}")));
        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                return true;
            }

            logger.LogError("Twilio refused a message ({Status}): {Error}", (int)response.StatusCode, await ErrorOfAsync(response, cancellationToken));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            logger.LogError("Twilio could not be reached: {Error}", e.Message);
        }

        return false;
    }

    /// <summary>Twilio's error code and message (<c>{"code": 21211, "message": "..."}</c>), or the status alone.</summary>
    private static async Task<string> ErrorOfAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            var code = json.RootElement.TryGetProperty("code", out var c) ? c.ToString() : "?";
            var message = json.RootElement.TryGetProperty("message", out var m) ? m.GetString() : null;
            return $"{code} {message}";
        }
        catch (JsonException)
        {
            return response.ReasonPhrase ?? "";
        }
    }
}
