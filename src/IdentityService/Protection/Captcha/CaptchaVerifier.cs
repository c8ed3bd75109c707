using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Serialization;
using IdentityService.Policy;
using Microsoft.Extensions.Options;

namespace IdentityService.Protection.Captcha;

/// <summary>The <c>Captcha</c> section: where Google's reCAPTCHA APIs are (overridable for tests).</summary>
public sealed class CaptchaOptions
{
    public const string Section = "Captcha";

    /// <summary>reCAPTCHA v3 siteverify host. Default: <c>https://www.google.com</c>.</summary>
    public string BaseUrl { get; set; } = "https://www.google.com";

    /// <summary>reCAPTCHA Enterprise API host. Default: <c>https://recaptchaenterprise.googleapis.com</c>.</summary>
    public string EnterpriseBaseUrl { get; set; } = "https://recaptchaenterprise.googleapis.com";

    /// <summary>How long to wait for Google before treating it as unreachable. Default: 3 seconds.</summary>
    public double TimeoutSeconds { get; set; } = 3;
}

/// <summary>What Google said of a token. <see cref="Reachable"/> false: Google could not be asked (network, timeout, 5xx).</summary>
public sealed record CaptchaVerdict(bool Reachable, bool Valid, double? Score, string? Action, string? Hostname, string? Error);

public interface ICaptchaVerifier
{
    Task<CaptchaVerdict> VerifyAsync(CaptchaPolicy policy, string? token, IPAddress ip, string? userAgent, CancellationToken cancellationToken);
}

/// <summary>
/// reCAPTCHA v3 (<c>POST /recaptcha/api/siteverify</c>) and Enterprise (<c>POST /v1/projects/{project}/assessments</c>)
/// through their documented REST APIs: the SDKs are not used.
/// </summary>
internal sealed class RecaptchaVerifier(HttpClient http, IOptions<CaptchaOptions> options) : ICaptchaVerifier
{
    public async Task<CaptchaVerdict> VerifyAsync(CaptchaPolicy policy, string? token, IPAddress ip, string? userAgent, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 10_000)
        {
            return new CaptchaVerdict(true, false, null, null, null, "missing-input-response");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.TimeoutSeconds));
        try
        {
            return policy.Provider == "enterprise"
                ? await AssessAsync(policy, token, ip, userAgent, timeout.Token)
                : await SiteVerifyAsync(policy, token, ip, timeout.Token);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException or NotSupportedException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            return new CaptchaVerdict(false, false, null, null, null, e.GetType().Name);
        }
    }

    private async Task<CaptchaVerdict> SiteVerifyAsync(CaptchaPolicy policy, string token, IPAddress ip, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsync(
            $"{options.Value.BaseUrl.TrimEnd('/')}/recaptcha/api/siteverify",
            new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["secret"] = policy.SecretKey ?? "",
                ["response"] = token,
                ["remoteip"] = ip.ToString(),
            }),
            cancellationToken);
        if ((int)response.StatusCode >= 500)
        {
            return new CaptchaVerdict(false, false, null, null, null, $"http_{(int)response.StatusCode}");
        }

        var body = await response.Content.ReadFromJsonAsync<SiteVerifyResponse>(cancellationToken) ?? new SiteVerifyResponse();
        return new CaptchaVerdict(true, body.Success, body.Score, body.Action, body.Hostname, body.ErrorCodes is { Length: > 0 } codes ? string.Join(",", codes) : null);
    }

    private async Task<CaptchaVerdict> AssessAsync(CaptchaPolicy policy, string token, IPAddress ip, string? userAgent, CancellationToken cancellationToken)
    {
        var url = $"{options.Value.EnterpriseBaseUrl.TrimEnd('/')}/v1/projects/{Uri.EscapeDataString(policy.ProjectId ?? "")}/assessments?key={Uri.EscapeDataString(policy.ApiKey ?? "")}";
        using var response = await http.PostAsJsonAsync(url, new
        {
            @event = new { token, siteKey = policy.SiteKey, expectedAction = policy.ExpectedAction, userIpAddress = ip.ToString(), userAgent },
        }, cancellationToken);
        if ((int)response.StatusCode >= 500)
        {
            return new CaptchaVerdict(false, false, null, null, null, $"http_{(int)response.StatusCode}");
        }

        if (!response.IsSuccessStatusCode)
        {
            return new CaptchaVerdict(true, false, null, null, null, $"http_{(int)response.StatusCode}");
        }

        var body = await response.Content.ReadFromJsonAsync<Assessment>(cancellationToken) ?? new Assessment();
        return new CaptchaVerdict(true, body.TokenProperties?.Valid == true, body.RiskAnalysis?.Score,
            body.TokenProperties?.Action, body.TokenProperties?.Hostname, body.TokenProperties?.InvalidReason);
    }

    private sealed class SiteVerifyResponse
    {
        public bool Success { get; set; }

        public double? Score { get; set; }

        public string? Action { get; set; }

        public string? Hostname { get; set; }

        [JsonPropertyName("error-codes")]
        public string[]? ErrorCodes { get; set; }
    }

    private sealed class Assessment
    {
        public TokenPropertiesPart? TokenProperties { get; set; }

        public RiskAnalysisPart? RiskAnalysis { get; set; }
    }

    private sealed class TokenPropertiesPart
    {
        public bool Valid { get; set; }

        public string? InvalidReason { get; set; }

        public string? Hostname { get; set; }

        public string? Action { get; set; }
    }

    private sealed class RiskAnalysisPart
    {
        public double? Score { get; set; }
    }
}
