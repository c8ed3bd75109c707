using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// A local stand-in for Twilio's Messages API on a real loopback port, answering as Twilio documents it:
/// <c>POST /2010-04-01/Accounts/{AccountSid}/Messages.json</c> with HTTP Basic (account SID, auth token) and the
/// form fields <c>To</c>, <c>From</c> or <c>MessagingServiceSid</c>, <c>Body</c>; 201 with the message resource,
/// or Twilio's error body (20003 for bad credentials, 21211 for a bad <c>To</c>, 21602 for no body).
/// </summary>
public sealed partial class FakeTwilio : IAsyncDisposable
{
    public const string AccountSid = "AC00000000000000000000000000000001";
    public const string AuthToken = "test-auth-token";
    public const string From = "+15005550006";

    private readonly WebApplication _app;

    private FakeTwilio(WebApplication app) => _app = app;

    public string Address { get; private set; } = "";

    /// <summary>The messages Twilio accepted.</summary>
    public ConcurrentQueue<(string To, string From, string Body)> Messages { get; } = new();

    /// <summary>The service's settings that point it at this server.</summary>
    public Dictionary<string, string?> Settings(string authToken = AuthToken) => new()
    {
        ["Sms:Twilio:AccountSid"] = AccountSid,
        ["Sms:Twilio:AuthToken"] = authToken,
        ["Sms:Twilio:From"] = From,
        ["Sms:Twilio:BaseUrl"] = Address,
    };

    public static async Task<FakeTwilio> StartAsync()
    {
        var app = LoopbackHttp.Create();
        var fake = new FakeTwilio(app);

        app.MapPost("/2010-04-01/Accounts/{sid}/Messages.json", async (HttpContext http, string sid) =>
        {
            var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{AccountSid}:{AuthToken}"));
            if (sid != AccountSid || http.Request.Headers.Authorization.ToString() != expected)
            {
                return Error(HttpStatusCode.Unauthorized, 20003, "Authenticate");
            }

            var form = await http.Request.ReadFormAsync();
            var to = form["To"].ToString();
            if (!E164().IsMatch(to))
            {
                return Error(HttpStatusCode.BadRequest, 21211, $"The 'To' number {to} is not a valid phone number.");
            }

            if (string.IsNullOrEmpty(form["Body"]))
            {
                return Error(HttpStatusCode.BadRequest, 21602, "Message body is required.");
            }

            fake.Messages.Enqueue((to, form["From"].ToString(), form["Body"].ToString()));
            return Results.Json(
                new JsonObject
                {
                    ["sid"] = "SM" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
                    ["account_sid"] = AccountSid,
                    ["to"] = to,
                    ["from"] = form["From"].ToString(),
                    ["body"] = form["Body"].ToString(),
                    ["status"] = "queued",
                },
                statusCode: StatusCodes.Status201Created);
        });

        fake.Address = await LoopbackHttp.StartAsync(app);
        return fake;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static IResult Error(HttpStatusCode status, int code, string message) => Results.Json(
        new JsonObject { ["code"] = code, ["message"] = message, ["more_info"] = $"https://www.twilio.com/docs/errors/{code}", ["status"] = (int)status },
        statusCode: (int)status);

    [GeneratedRegex(@"^\+[1-9][0-9]{6,14}$")]
    private static partial Regex E164();
}
