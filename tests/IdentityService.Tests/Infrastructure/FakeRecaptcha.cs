using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// A local stand-in for Google's reCAPTCHA APIs on a real loopback port, answering as they are documented:
/// v3 <c>POST /recaptcha/api/siteverify</c> (form: secret, response, remoteip) and Enterprise
/// <c>POST /v1/projects/{project}/assessments?key=</c> (JSON event). It checks the secret, API key, project
/// and token the way Google does, records every request, and can be told to fail (status) or to be slow.
/// </summary>
public sealed class FakeRecaptcha : IAsyncDisposable
{
    public const string Secret = "test-secret-key";
    public const string ApiKey = "test-api-key";
    public const string Project = "test-project";
    public const string Token = "token-from-the-browser";

    private readonly WebApplication _app;

    private FakeRecaptcha(WebApplication app) => _app = app;

    public string Address { get; private set; } = "";

    /// <summary>What siteverify answers for the right secret and token (success, score, action, hostname...).</summary>
    public JsonObject SiteVerifyAnswer { get; set; } = V3(0.9);

    /// <summary>What assessments answers for the right key, project and token.</summary>
    public JsonObject AssessmentAnswer { get; set; } = Enterprise(true, 0.9);

    /// <summary>Not null: every request is answered with this status (and Google's error body).</summary>
    public HttpStatusCode? FailWith { get; set; }

    /// <summary>How long to wait before answering.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Send the status and headers at once, then stall this long before the body.</summary>
    public TimeSpan BodyDelay { get; set; }

    public ConcurrentQueue<Dictionary<string, string>> SiteVerifyRequests { get; } = new();

    public ConcurrentQueue<(string Project, string? Key, JsonNode? Body)> AssessmentRequests { get; } = new();

    public static JsonObject V3(double score, string action = "login", string hostname = "localhost", bool success = true) => new()
    {
        ["success"] = success,
        ["score"] = score,
        ["action"] = action,
        ["challenge_ts"] = "2026-11-23T09:00:00Z",
        ["hostname"] = hostname,
    };

    public static JsonObject Enterprise(bool valid, double score, string action = "login", string hostname = "localhost", string invalidReason = "INVALID_REASON_UNSPECIFIED") => new()
    {
        ["name"] = $"projects/{Project}/assessments/0123456789abcdef",
        ["tokenProperties"] = new JsonObject
        {
            ["valid"] = valid,
            ["invalidReason"] = invalidReason,
            ["hostname"] = hostname,
            ["action"] = action,
            ["createTime"] = "2026-11-23T09:00:00Z",
        },
        ["riskAnalysis"] = new JsonObject { ["score"] = score, ["reasons"] = new JsonArray() },
    };

    public static async Task<FakeRecaptcha> StartAsync()
    {
        var app = LoopbackHttp.Create();
        var fake = new FakeRecaptcha(app);

        app.MapPost("/recaptcha/api/siteverify", async (HttpContext http) =>
        {
            var form = await http.Request.ReadFormAsync();
            fake.SiteVerifyRequests.Enqueue(form.ToDictionary(f => f.Key, f => f.Value.ToString()));
            if (await fake.FailOrWaitAsync(http) is { } failure)
            {
                return failure;
            }

            // Google answers 200 with success false and error codes for a bad secret or token.
            if (form["secret"] != Secret)
            {
                return Results.Json(new JsonObject { ["success"] = false, ["error-codes"] = new JsonArray("invalid-input-secret") });
            }

            if (form["response"] != Token)
            {
                return Results.Json(new JsonObject { ["success"] = false, ["error-codes"] = new JsonArray("invalid-input-response") });
            }

            return Results.Json(fake.SiteVerifyAnswer);
        });

        app.MapPost("/v1/projects/{project}/assessments", async (HttpContext http, string project) =>
        {
            var body = await JsonNode.ParseAsync(http.Request.Body);
            var key = http.Request.Query["key"].ToString();
            fake.AssessmentRequests.Enqueue((project, key, body));
            if (await fake.FailOrWaitAsync(http) is { } failure)
            {
                return failure;
            }

            if (key != ApiKey)
            {
                return GoogleError(HttpStatusCode.BadRequest, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT");
            }

            if (project != Project)
            {
                return GoogleError(HttpStatusCode.Forbidden, "Permission denied on resource project.", "PERMISSION_DENIED");
            }

            if (body?["event"]?["token"]?.GetValue<string>() != Token)
            {
                return Results.Json(Enterprise(false, 0, "", "", "MALFORMED"));
            }

            return Results.Json(fake.AssessmentAnswer);
        });

        fake.Address = await LoopbackHttp.StartAsync(app);
        return fake;
    }

    private async Task<IResult?> FailOrWaitAsync(HttpContext http)
    {
        if (Delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(Delay, http.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return Results.Empty;
            }
        }

        if (BodyDelay > TimeSpan.Zero)
        {
            var delay = BodyDelay;
            return new SlowBody(delay);
        }

        return FailWith is { } status ? GoogleError(status, "Internal error encountered.", "INTERNAL") : null;
    }

    private sealed class SlowBody(TimeSpan delay) : IResult
    {
        public async Task ExecuteAsync(HttpContext http)
        {
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync("{\"success\":");
            await http.Response.Body.FlushAsync();
            try
            {
                await Task.Delay(delay, http.RequestAborted);
                await http.Response.WriteAsync("true,\"score\":0.9,\"action\":\"login\",\"hostname\":\"localhost\"}");
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private static IResult GoogleError(HttpStatusCode status, string message, string code) =>
        Results.Json(new JsonObject { ["error"] = new JsonObject { ["code"] = (int)status, ["message"] = message, ["status"] = code } }, statusCode: (int)status);

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}
