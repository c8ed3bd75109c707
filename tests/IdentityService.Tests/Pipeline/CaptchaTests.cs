using System.Net;
using System.Text.Json.Nodes;
using IdentityService.SignIn.Pages;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Pipeline;

/// <summary>
/// reCAPTCHA v3 and Enterprise through the real sign-in page, against a local server answering as Google's
/// documented APIs do. The tests post <c>g-recaptcha-response</c> themselves, as Google's script would.
/// </summary>
public sealed class CaptchaTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Tenant = "acme";
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";
    private const string ClientIp = "203.0.113.9";
    private const string UserAgent = "CaptchaTests/1.0";

    private static readonly TimeSpan StalledFor = TimeSpan.FromSeconds(10);
    private readonly IdentityServiceFactory _factory = new();
    private FakeRecaptcha _google = null!;

    public async Task InitializeAsync()
    {
        _google = await FakeRecaptcha.StartAsync();
        _factory.Output = output;
        _factory.Settings["Captcha:BaseUrl"] = _google.Address;
        _factory.Settings["Captcha:EnterpriseBaseUrl"] = _google.Address + "/";
        // Long enough that a busy machine never times out an answer the test wants read (a refusal then read as
        // unreachable, failing open); the tests of a slow Google stall it for longer.
        _factory.Settings["Captcha:TimeoutSeconds"] = "4";
        await _factory.CreateTenantAsync(Tenant);
        await _factory.CreateWebClientAsync(Tenant);
        await _factory.CreateUserAsync(Tenant, Email, Password);
    }

    public async Task DisposeAsync()
    {
        _factory.Dispose();
        await _google.DisposeAsync();
    }

    private Task UseV3Async(object? extra = null) => _factory.PatchPolicyAsync(Tenant, new
    {
        captcha = Merge(new JsonObject { ["provider"] = "v3", ["siteKey"] = "site-key-v3", ["secretKey"] = FakeRecaptcha.Secret }, extra),
    });

    private Task UseEnterpriseAsync(object? extra = null) => _factory.PatchPolicyAsync(Tenant, new
    {
        captcha = Merge(new JsonObject
        {
            ["provider"] = "enterprise",
            ["siteKey"] = "site-key-enterprise",
            ["projectId"] = FakeRecaptcha.Project,
            ["apiKey"] = FakeRecaptcha.ApiKey,
        }, extra),
    });

    private static JsonObject Merge(JsonObject captcha, object? extra)
    {
        if (extra is not null)
        {
            foreach (var (name, value) in System.Text.Json.JsonSerializer.SerializeToNode(extra)!.AsObject())
            {
                captcha[name] = value?.DeepClone();
            }
        }

        return captcha;
    }

    private HttpClient Browser()
    {
        var browser = _factory.CreateBrowserFrom(ClientIp);
        browser.DefaultRequestHeaders.UserAgent.ParseAdd(UserAgent);
        return browser;
    }

    private static OidcFlow Flow(HttpClient browser, string? token = FakeRecaptcha.Token)
    {
        var flow = new OidcFlow(browser, Tenant, "web");
        if (token is not null)
        {
            flow.FormFields["g-recaptcha-response"] = token;
        }

        return flow;
    }

    private async Task SignsInAsync(string? token = FakeRecaptcha.Token)
    {
        using var browser = Browser();
        await Flow(browser, token).SignInAsync(Email, Password);
    }

    /// <summary>The page the person sees, which must not tell why; returns the log's record of the attempt.</summary>
    private async Task<IdentityService.Audit.AuditEvent> RefusedAsync(string expectedReason, string? token = FakeRecaptcha.Token, string message = LoginModel.RefusedMessage)
    {
        using var browser = Browser();
        var refused = await Assert.ThrowsAsync<SignInRefusedException>(() => Flow(browser, token).GetCodeAsync(Email, Password));
        Assert.Contains(message, WebUtility.HtmlDecode(refused.Page));
        Assert.DoesNotContain(expectedReason, refused.Page);

        var attempt = Assert.Single(await _factory.SignInEventsAsync(Tenant));
        Assert.Equal(expectedReason, attempt.Reason);
        Assert.Equal("VerifyCaptcha", attempt.DecidedBy);
        return attempt;
    }

    private async Task<IdentityService.Audit.AuditEvent> OnlyAttemptAsync() => Assert.Single(await _factory.SignInEventsAsync(Tenant));

    [Fact]
    public async Task V3_HighScore_SignsIn_AndGoogleIsAskedWithTheSecretTokenAndClientAddress()
    {
        await UseV3Async();
        _google.SiteVerifyAnswer = FakeRecaptcha.V3(0.9);

        await SignsInAsync();

        var request = Assert.Single(_google.SiteVerifyRequests);
        Assert.Equal(FakeRecaptcha.Secret, request["secret"]);
        Assert.Equal(FakeRecaptcha.Token, request["response"]);
        Assert.Equal(ClientIp, request["remoteip"]);
        var attempt = await OnlyAttemptAsync();
        Assert.Equal("succeeded", attempt.Outcome);
        Assert.Contains("score 0.9", attempt.Trace);
    }

    [Fact]
    public async Task V3_LowScore_IsRefusedWithTheGenericMessage()
    {
        await UseV3Async(new { threshold = 0.5 });
        _google.SiteVerifyAnswer = FakeRecaptcha.V3(0.1);

        var attempt = await RefusedAsync("captcha_low_score");
        Assert.Equal("failed", attempt.Outcome);
    }

    [Fact]
    public async Task V3_LowScore_WithChallenge_AsksForASecondFactor_OnceThePasswordIsRight()
    {
        await UseV3Async(new { belowThreshold = "challenge" });
        _google.SiteVerifyAnswer = FakeRecaptcha.V3(0.2);

        // This account has no second factor it can use, and a step-up never sets one up: the sign-in stops there.
        using var browser = Browser();
        var refused = await Assert.ThrowsAsync<SignInRefusedException>(() => Flow(browser, FakeRecaptcha.Token).GetCodeAsync(Email, Password));
        Assert.Contains(LoginModel.SecondFactorMessage, WebUtility.HtmlDecode(refused.Page));
        var attempt = Assert.Single(await _factory.SignInEventsAsync(Tenant));
        Assert.Equal(("challenged", "captcha_low_score", "RequireSecondFactor"), (attempt.Outcome, attempt.Reason, attempt.DecidedBy));

        // A wrong password is refused as always: the low score asked for more, not less.
        refused = await Assert.ThrowsAsync<SignInRefusedException>(() => Flow(Browser(), FakeRecaptcha.Token).GetCodeAsync(Email, "wrong password"));
        Assert.Contains(LoginModel.RefusedMessage, WebUtility.HtmlDecode(refused.Page));
        Assert.Equal("invalid_credentials", (await _factory.SignInEventsAsync(Tenant))[^1].Reason);
    }

    [Fact]
    public async Task V3_WrongAction_IsRefused()
    {
        await UseV3Async(new { expectedAction = "login" });
        _google.SiteVerifyAnswer = FakeRecaptcha.V3(0.9, action: "signup");

        await RefusedAsync("captcha_wrong_action");
    }

    [Fact]
    public async Task V3_NoActionInTheAnswer_IsRefused()
    {
        await UseV3Async();
        var answer = FakeRecaptcha.V3(0.9);
        answer.Remove("action");
        _google.SiteVerifyAnswer = answer;

        await RefusedAsync("captcha_wrong_action");
    }

    [Fact]
    public async Task V3_WrongHostname_IsRefused_RightHostnameSignsIn()
    {
        await UseV3Async(new { hostnames = new[] { "id.example.com" } });
        _google.SiteVerifyAnswer = FakeRecaptcha.V3(0.9, hostname: "id.example.com");
        await SignsInAsync();

        _google.SiteVerifyAnswer = FakeRecaptcha.V3(0.9, hostname: "evil.example");
        using var browser = Browser();
        var refused = await Assert.ThrowsAsync<SignInRefusedException>(() => Flow(browser).GetCodeAsync(Email, Password));
        Assert.Contains(LoginModel.RefusedMessage, WebUtility.HtmlDecode(refused.Page));
        var attempts = await _factory.SignInEventsAsync(Tenant);
        Assert.Contains(attempts, a => a.Reason == "captcha_wrong_hostname" && a.DecidedBy == "VerifyCaptcha");
    }

    [Fact]
    public async Task V3_SuccessFalse_IsRefused()
    {
        await UseV3Async();
        _google.SiteVerifyAnswer = new JsonObject { ["success"] = false, ["error-codes"] = new JsonArray("timeout-or-duplicate") };

        var attempt = await RefusedAsync("captcha_invalid");
        Assert.Contains("timeout-or-duplicate", attempt.Trace);
    }

    [Fact]
    public async Task V3_WrongTokenOrNoToken_IsRefused()
    {
        await UseV3Async();
        await RefusedAsync("captcha_invalid", token: "forged");

        await UseV3Async();
        using var browser = Browser();
        await Assert.ThrowsAsync<SignInRefusedException>(() => Flow(browser, token: null).GetCodeAsync(Email, Password));
        Assert.Equal(2, (await _factory.SignInEventsAsync(Tenant)).Count(a => a.Reason == "captcha_invalid"));
        Assert.Single(_google.SiteVerifyRequests);
    }

    [Fact]
    public async Task GoogleAnswering500_FailOpen_SignsIn_AndTheLogSaysSo()
    {
        await UseV3Async(new { whenUnavailable = "open" });
        _google.FailWith = HttpStatusCode.InternalServerError;

        await SignsInAsync();

        var attempt = await OnlyAttemptAsync();
        Assert.Equal("succeeded", attempt.Outcome);
        Assert.Contains("failed open", attempt.Trace);
    }

    [Fact]
    public async Task GoogleTimingOut_FailOpen_SignsIn_AndTheLogSaysSo()
    {
        await UseV3Async(new { whenUnavailable = "open" });
        _google.Delay = StalledFor;

        await SignsInAsync();

        var attempt = await OnlyAttemptAsync();
        Assert.Equal("succeeded", attempt.Outcome);
        Assert.Contains("failed open", attempt.Trace);
    }

    [Fact]
    public async Task GoogleStallingMidAnswer_FailOpen_SignsIn_AndTheLogSaysSo()
    {
        await UseV3Async(new { whenUnavailable = "open" });
        _google.BodyDelay = StalledFor;

        await SignsInAsync();

        var attempt = await OnlyAttemptAsync();
        Assert.Equal("succeeded", attempt.Outcome);
        Assert.Contains("failed open", attempt.Trace);
    }

    [Fact]
    public async Task GoogleAnswering500_FailClosed_IsRefused()
    {
        await UseV3Async(new { whenUnavailable = "closed" });
        _google.FailWith = HttpStatusCode.ServiceUnavailable;

        var attempt = await RefusedAsync("captcha_unavailable");
        Assert.Contains("failed closed", attempt.Trace);
    }

    [Fact]
    public async Task GoogleTimingOut_FailClosed_IsRefused()
    {
        await UseEnterpriseAsync(new { whenUnavailable = "closed" });
        _google.Delay = StalledFor;

        var attempt = await RefusedAsync("captcha_unavailable");
        Assert.Contains("failed closed", attempt.Trace);
    }

    [Fact]
    public async Task Enterprise_ValidToken_SignsIn_AndTheAssessmentCarriesTheEvent()
    {
        await UseEnterpriseAsync();
        _google.AssessmentAnswer = FakeRecaptcha.Enterprise(true, 0.8);

        await SignsInAsync();

        var (project, key, body) = Assert.Single(_google.AssessmentRequests);
        Assert.Equal(FakeRecaptcha.Project, project);
        Assert.Equal(FakeRecaptcha.ApiKey, key);
        var assessed = body!["event"]!;
        Assert.Equal(FakeRecaptcha.Token, assessed["token"]!.GetValue<string>());
        Assert.Equal("site-key-enterprise", assessed["siteKey"]!.GetValue<string>());
        Assert.Equal("login", assessed["expectedAction"]!.GetValue<string>());
        Assert.Equal(ClientIp, assessed["userIpAddress"]!.GetValue<string>());
        Assert.Equal(UserAgent, assessed["userAgent"]!.GetValue<string>());
        Assert.Equal("succeeded", (await OnlyAttemptAsync()).Outcome);
    }

    [Fact]
    public async Task Enterprise_InvalidToken_IsRefused()
    {
        await UseEnterpriseAsync();
        _google.AssessmentAnswer = FakeRecaptcha.Enterprise(false, 0, invalidReason: "EXPIRED");

        var attempt = await RefusedAsync("captcha_invalid");
        Assert.Contains("EXPIRED", attempt.Trace);
    }

    [Fact]
    public async Task Enterprise_LowScore_IsRefused()
    {
        await UseEnterpriseAsync(new { threshold = 0.7 });
        _google.AssessmentAnswer = FakeRecaptcha.Enterprise(true, 0.3);

        await RefusedAsync("captcha_low_score");
    }

    [Fact]
    public async Task Enterprise_WrongApiKey_IsRefused()
    {
        await UseEnterpriseAsync(new { apiKey = "not-the-key" });

        await RefusedAsync("captcha_invalid");
    }

    [Fact]
    public async Task LoginPage_LoadsGooglesScript_OnlyForATenantUsingRecaptcha()
    {
        using var api = _factory.CreateApi();
        var plain = await api.GetStringAsync($"/t/{Tenant}/login");
        Assert.DoesNotContain("recaptcha/api.js", plain);
        Assert.DoesNotContain("recaptcha/enterprise.js", plain);
        Assert.DoesNotContain("g-recaptcha-response", plain);

        await UseV3Async();
        var v3 = await api.GetStringAsync($"/t/{Tenant}/login");
        Assert.Contains("https://www.google.com/recaptcha/api.js?render=site-key-v3", v3);
        Assert.DoesNotContain("recaptcha/enterprise.js", v3);
        Assert.Contains("name=\"g-recaptcha-response\"", v3);

        await UseEnterpriseAsync();
        var enterprise = await api.GetStringAsync($"/t/{Tenant}/login");
        Assert.Contains("https://www.google.com/recaptcha/enterprise.js?render=site-key-enterprise", enterprise);
        Assert.DoesNotContain("recaptcha/api.js", enterprise);

        await _factory.PatchPolicyAsync(Tenant, new { captcha = new { provider = "none" } });
        Assert.DoesNotContain("recaptcha/", await api.GetStringAsync($"/t/{Tenant}/login"));
    }

    [Theory]
    [InlineData("{\"captcha\":{\"provider\":\"v3\",\"siteKey\":\"k\"}}", "captcha.secretKey")]
    [InlineData("{\"captcha\":{\"provider\":\"enterprise\",\"siteKey\":\"k\",\"apiKey\":\"a\"}}", "captcha.projectId")]
    [InlineData("{\"captcha\":{\"provider\":\"v3\",\"secretKey\":\"s\"}}", "captcha.siteKey")]
    [InlineData("{\"captcha\":{\"provider\":\"v3\",\"siteKey\":\"k\\\"><script>\",\"secretKey\":\"s\"}}", "captcha.siteKey")]
    [InlineData("{\"captcha\":{\"threshold\":1.5}}", "captcha.threshold")]
    [InlineData("{\"captcha\":{\"whenUnavailable\":\"maybe\"}}", "captcha.whenUnavailable")]
    [InlineData("{\"countries\":{\"allowed\":[\"fr\"]}}", "countries.allowed[0]")]
    [InlineData("{\"countries\":{\"allowed\":[\"XX\"]}}", "countries.allowed[0]")]
    [InlineData("{\"countries\":{\"whenUnknown\":\"block\"}}", "countries.whenUnknown")]
    public async Task BadCaptchaOrCountrySettings_Are400NamingTheField(string patch, string field)
    {
        using var client = _factory.CreateApi();
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/policy")
        {
            Content = new StringContent(patch, System.Text.Encoding.UTF8, "application/merge-patch+json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", await _factory.AdminTokenAsync());
        var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
        Assert.Contains($"\"{field}\"", body);
    }

    [Fact]
    public async Task Secrets_AreNeverAnswered()
    {
        await UseV3Async();
        using var api = _factory.CreateApi();
        var response = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/policy");
        var body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(FakeRecaptcha.Secret, body);
        Assert.Contains("site-key-v3", body);
    }
}
