using Microsoft.AspNetCore.Builder;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// OpenID Connect Back-Channel Logout: sessions have an id (<c>sid</c>) in their ID tokens, and when sign-ins end at
/// the service each client signed in with them gets a logout token at its <c>backchannelLogoutUri</c> (a real
/// loopback endpoint here).
/// </summary>
public sealed class BackchannelLogoutTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new();
    private WebhookReceiver _receiver = null!;
    private string _userId = "";

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        _receiver = await WebhookReceiver.StartAsync();
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme", "web");
        await _factory.CreateWebClientAsync("acme", "other");
        await _factory.CreateWebClientAsync("acme", "quiet");
        await SetLogoutUriAsync("web", _receiver.Url + "/web");
        await SetLogoutUriAsync("other", _receiver.Url + "/other");
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public async Task DisposeAsync() => await _receiver.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task IdTokens_CarryTheBrowserSessionsId_TheSameForEveryClientAndRefresh_AndAnotherForAnotherBrowser()
    {
        using var browser = _factory.CreateBrowser();
        var web = await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        var sid = Claim(web.GetProperty("id_token").GetString()!, "sid");
        Assert.Equal(22, sid.Length);

        var other = await new OidcFlow(browser, "acme", "other").SignInAsync("ada@acme.test", Password);
        Assert.Equal(sid, Claim(other.GetProperty("id_token").GetString()!, "sid"));

        using var refreshed = await new OidcFlow(browser, "acme", "web").RefreshAsync(web.GetProperty("refresh_token").GetString()!);
        var body = JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(sid, Claim(body.GetProperty("id_token").GetString()!, "sid"));

        using var elsewhere = _factory.CreateBrowser();
        var second = await new OidcFlow(elsewhere, "acme", "web").SignInAsync("ada@acme.test", Password);
        Assert.NotEqual(sid, Claim(second.GetProperty("id_token").GetString()!, "sid"));

        using var discovery = await browser.GetAsync("/t/acme/.well-known/openid-configuration");
        var metadata = JsonDocument.Parse(await discovery.Content.ReadAsStringAsync()).RootElement;
        Assert.True(metadata.GetProperty("backchannel_logout_supported").GetBoolean());
        Assert.True(metadata.GetProperty("backchannel_logout_session_supported").GetBoolean());
    }

    [Fact]
    public async Task SigningOut_TellsEachClientOfThatSession_WithASignedLogoutToken_AndNoClientOfAnotherSession()
    {
        using var browser = _factory.CreateBrowser();
        var web = await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        await new OidcFlow(browser, "acme", "other").SignInAsync("ada@acme.test", Password);
        await new OidcFlow(browser, "acme", "quiet").SignInAsync("ada@acme.test", Password);
        using var elsewhere = _factory.CreateBrowser();
        var kept = await new OidcFlow(elsewhere, "acme", "web").SignInAsync("ada@acme.test", Password);
        var idToken = web.GetProperty("id_token").GetString()!;

        using var ended = await browser.GetAsync("/t/acme/connect/endsession?id_token_hint=" + Uri.EscapeDataString(idToken));
        Assert.Equal(HttpStatusCode.Redirect, ended.StatusCode);

        await Eventually.TrueAsync(() => _receiver.Deliveries.Count >= 2, "Both clients of the session are told.");
        var deliveries = _receiver.Deliveries.ToList();
        Assert.Equal(["/other", "/web"], deliveries.Select(d => d.Path).Order());
        var sid = Claim(idToken, "sid");
        foreach (var delivery in deliveries)
        {
            Assert.Equal("application/x-www-form-urlencoded", delivery.ContentType?.Split(';')[0]);
            var token = await ValidateAsync(delivery, delivery.Path.TrimStart('/'));
            Assert.Equal(sid, token.GetClaim("sid").Value);
            Assert.Equal(_userId, token.Subject);
        }

        Assert.NotEqual(sid, Claim(kept.GetProperty("id_token").GetString()!, "sid"));
        // The other browser's session is not ended: nothing more was sent for it.
        await Task.Delay(200);
        Assert.Equal(2, _receiver.Deliveries.Count);

        var logged = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.signed_out", expected: HttpStatusCode.OK))["items"]!.AsArray();
        var entry = Assert.Single(logged)!;
        Assert.Equal(_userId, entry["userId"]!.GetValue<string>());
        Assert.Equal(["other", "web"], entry["details"]!["clientsTold"]!.AsArray().Select(c => c!.GetValue<string>()));
    }

    [Fact]
    public async Task SigningOut_EndsTheSessionsSignInsWithoutOfflineAccess_AtOnce_NotThoseGivenIt_NorAnotherSessions()
    {
        using var browser = _factory.CreateBrowser();
        var online = new OidcFlow(browser, "acme", "web") { Scope = "openid profile" };
        var onlineTokens = await online.SignInAsync("ada@acme.test", Password);
        var offline = new OidcFlow(browser, "acme", "other");
        var offlineTokens = await offline.SignInAsync("ada@acme.test", Password);
        using var elsewhere = _factory.CreateBrowser();
        var otherSession = new OidcFlow(elsewhere, "acme", "web") { Scope = "openid profile" };
        var otherTokens = await otherSession.SignInAsync("ada@acme.test", Password);
        var onlineAccess = onlineTokens.GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, await online.UserInfoStatusAsync(onlineAccess));

        using var ended = await browser.GetAsync("/t/acme/connect/endsession?id_token_hint=" + Uri.EscapeDataString(onlineTokens.GetProperty("id_token").GetString()!));
        Assert.Equal(HttpStatusCode.Redirect, ended.StatusCode);

        // The access token of the sign-in without offline_access is refused now, not in an hour.
        Assert.Equal(HttpStatusCode.Unauthorized, await online.UserInfoStatusAsync(onlineAccess));
        // The one given offline access lives on, its refresh token too (OpenID Connect keeps it past a logout).
        Assert.Equal(HttpStatusCode.OK, await offline.UserInfoStatusAsync(offlineTokens.GetProperty("access_token").GetString()!));
        using var refreshed = await offline.RefreshAsync(offlineTokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        // Another browser's session is not this one.
        Assert.Equal(HttpStatusCode.OK, await otherSession.UserInfoStatusAsync(otherTokens.GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task AnAdminSigningTheUserOutEverywhere_TellsEachClientOnceForEachSession()
    {
        using var first = _factory.CreateBrowser();
        var a = await new OidcFlow(first, "acme", "web").SignInAsync("ada@acme.test", Password);
        using var second = _factory.CreateBrowser();
        var b = await new OidcFlow(second, "acme", "web").SignInAsync("ada@acme.test", Password);
        await new OidcFlow(second, "acme", "other").SignInAsync("ada@acme.test", Password);

        var response = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{_userId}/signout");
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);

        await Eventually.TrueAsync(() => _receiver.Deliveries.Count >= 3, "Each client is told of each session.");
        var told = new List<string>();
        foreach (var delivery in _receiver.Deliveries)
        {
            var token = await ValidateAsync(delivery, delivery.Path.TrimStart('/'));
            told.Add($"{delivery.Path} {token.GetClaim("sid").Value}");
        }

        string sidA = Claim(a.GetProperty("id_token").GetString()!, "sid"), sidB = Claim(b.GetProperty("id_token").GetString()!, "sid");
        Assert.Equal(new[] { $"/other {sidB}", $"/web {sidA}", $"/web {sidB}" }.Order(), told.Order());
    }

    [Fact]
    public async Task WithdrawingOneAppsAccess_TellsThatAppAlone()
    {
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        await new OidcFlow(browser, "acme", "other").SignInAsync("ada@acme.test", Password);

        var response = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{_userId}/apps/other");
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());

        await Eventually.TrueAsync(() => !_receiver.Deliveries.IsEmpty, "The app is told.");
        await Task.Delay(200);
        var delivery = Assert.Single(_receiver.Deliveries);
        Assert.Equal("/other", delivery.Path);
        await ValidateAsync(delivery, "other");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ADevicesSignIn_HasNoBrowserSession_ItsClientIsToldBySubjectAlone_UnlessItRequiresTheSession(bool sessionRequired)
    {
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "tv", grantTypes = new[] { "urn:ietf:params:oauth:grant-type:device_code", "refresh_token" },
            scopes = new[] { "openid", "offline_access" }, backchannelLogoutUri = _receiver.Url + "/tv", backchannelLogoutSessionRequired = sessionRequired,
        });
        using var device = _factory.CreateApi();
        using var asked = await device.PostAsync("/t/acme/connect/device", new FormUrlEncodedContent(new Dictionary<string, string> { ["client_id"] = "tv", ["scope"] = "openid offline_access" }));
        var codes = JsonDocument.Parse(await asked.Content.ReadAsStringAsync()).RootElement;
        var userCode = codes.GetProperty("user_code").GetString()!;
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "quiet").GetCodeAsync("ada@acme.test", Password);
        var page = await browser.GetStringAsync($"/t/acme/device?user_code={userCode}");
        using var answered = await browser.PostAsync("/t/acme/device", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["user_code"] = userCode, ["decision"] = "allow", ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(page),
        }));
        _factory.Time.Advance(TimeSpan.FromSeconds(5));
        using var polled = await device.PostAsync("/t/acme/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:device_code", ["client_id"] = "tv", ["device_code"] = codes.GetProperty("device_code").GetString()!,
        }));
        var tokens = JsonDocument.Parse(await polled.Content.ReadAsStringAsync()).RootElement;
        Assert.False(new JsonWebToken(tokens.GetProperty("id_token").GetString()).TryGetClaim("sid", out _), "A device's sign-in is not the browser's session.");

        // The browser that allowed it signs out: the device stays signed in, and is not told.
        await browser.GetAsync("/t/acme/connect/endsession?id_token_hint=" + Uri.EscapeDataString(tokens.GetProperty("id_token").GetString()!));
        using var refreshed = await new OidcFlow(device, "acme", "tv").RefreshAsync(tokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        Assert.Empty(_receiver.Deliveries);

        var response = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{_userId}/signout");
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);

        if (sessionRequired)
        {
            await Task.Delay(300);
            Assert.Empty(_receiver.Deliveries);
            return;
        }

        await Eventually.TrueAsync(() => !_receiver.Deliveries.IsEmpty, "The device's client is told.");
        var delivery = Assert.Single(_receiver.Deliveries);
        var token = await ValidateAsync(delivery, "tv");
        Assert.Equal(_userId, token.Subject);
        Assert.False(token.TryGetClaim("sid", out _));
    }

    [Fact]
    public async Task AFailedDelivery_IsTriedAgainFiveSecondsLater_WithTheSameToken()
    {
        using var browser = _factory.CreateBrowser();
        var web = await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        _receiver.Statuses.Enqueue(HttpStatusCode.InternalServerError);

        await browser.GetAsync("/t/acme/connect/endsession?id_token_hint=" + Uri.EscapeDataString(web.GetProperty("id_token").GetString()!));
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count == 1, "The first attempt is made.");
        await Task.Delay(100);
        Assert.Single(_receiver.Deliveries);

        await Eventually.TrueAsync(() =>
        {
            _factory.Time.Advance(TimeSpan.FromSeconds(5));
            return _receiver.Deliveries.Count == 2;
        }, "The second attempt follows 5 s later.");
        var attempts = _receiver.Deliveries.ToList();
        Assert.Equal(attempts[0].Body, attempts[1].Body);
    }

    [Fact]
    public async Task AClientAnsweringWithAnEndlessBody_IsToldAtOnce_ItsBodyNeverRead()
    {
        var log = new RecordingOutput(output);
        _factory.Output = log;
        await using var endless = LoopbackHttp.Create();
        endless.MapPost("/logout", async (Microsoft.AspNetCore.Http.HttpContext http) =>
        {
            http.Response.StatusCode = 200;
            var chunk = new byte[64 * 1024];
            while (!http.RequestAborted.IsCancellationRequested)
            {
                await http.Response.Body.WriteAsync(chunk, http.RequestAborted);
            }
        });
        await SetLogoutUriAsync("quiet", await LoopbackHttp.StartAsync(endless) + "/logout");
        using var browser = _factory.CreateBrowser();
        var quiet = await new OidcFlow(browser, "acme", "quiet").SignInAsync("ada@acme.test", Password);

        await browser.GetAsync("/t/acme/connect/endsession?id_token_hint=" + Uri.EscapeDataString(quiet.GetProperty("id_token").GetString()!));

        // Its status is its answer: the sender does not wait out its 5 s reading what follows.
        await Eventually.TrueAsync(() => log.Lines.Any(l => l.Contains("Back-channel logout sent to client quiet")), "The 200 is taken at once.");
        Assert.DoesNotContain(log.Lines, l => l.Contains("Back-channel logout") && l.Contains("tried again at"));
    }

    [Fact]
    public async Task ALogoutTokenWaitingToBeTriedAgain_IsSentWhenTheServiceStops()
    {
        var log = new RecordingOutput(output);
        _factory.Output = log;
        using var browser = _factory.CreateBrowser();
        var web = await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        _receiver.Statuses.Enqueue(HttpStatusCode.ServiceUnavailable);

        await browser.GetAsync("/t/acme/connect/endsession?id_token_hint=" + Uri.EscapeDataString(web.GetProperty("id_token").GetString()!));
        await Eventually.TrueAsync(() => log.Lines.Any(l => l.Contains("Back-channel logout") && l.Contains("tried again at")), "The first attempt fails; the next waits 5 s.");

        // The service stops (a deploy) before the 5 s pass on the test's clock: the token is sent before it exits.
        _factory.Dispose();
        var attempts = _receiver.Deliveries.ToList();
        Assert.Equal(2, attempts.Count);
        Assert.Equal(attempts[0].Body, attempts[1].Body);
    }

    [Fact]
    public async Task TheManagementApi_TakesShowsAndRemovesTheUri_AndRefusesOneItCannotCall()
    {
        var client = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/clients/web", expected: HttpStatusCode.OK);
        Assert.Equal(_receiver.Url + "/web", client["backchannelLogoutUri"]!.GetValue<string>());
        Assert.False(client["backchannelLogoutSessionRequired"]!.GetValue<bool>());

        foreach (var bad in new[] { "ftp://app.example/logout", "/logout", "https://user:pw@app.example/logout", "https://app.example/logout#x" })
        {
            var refused = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/clients/web", new { backchannelLogoutUri = bad });
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            var problem = JsonNode.Parse(await refused.Content.ReadAsStringAsync())!;
            Assert.StartsWith("backchannelLogoutUri", problem["errors"]!["backchannelLogoutUri"]![0]!.GetValue<string>());
        }

        var backEnd = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "batch", clientSecret = "a-long-enough-secret-1234", grantTypes = new[] { "client_credentials" }, backchannelLogoutUri = "https://app.example/logout",
        });
        Assert.Equal(HttpStatusCode.BadRequest, backEnd.StatusCode);

        var changed = await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/clients/web", new { backchannelLogoutSessionRequired = true }, HttpStatusCode.OK);
        Assert.True(changed["backchannelLogoutSessionRequired"]!.GetValue<bool>());
        Assert.Equal(_receiver.Url + "/web", changed["backchannelLogoutUri"]!.GetValue<string>());
        var removed = await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/clients/web", new { backchannelLogoutUri = "" }, HttpStatusCode.OK);
        Assert.Null(removed["backchannelLogoutUri"]);
    }

    private async Task SetLogoutUriAsync(string clientId, string uri) =>
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/clients/{clientId}", new { backchannelLogoutUri = uri }, HttpStatusCode.OK);

    /// <summary>The logout token of a delivery, checked as a client checks it (OpenID Connect Back-Channel Logout 1.0, 2.6).</summary>
    private async Task<JsonWebToken> ValidateAsync(WebhookReceiver.Delivery delivery, string clientId)
    {
        var form = QueryHelpers.ParseQuery(delivery.Body);
        using var browser = _factory.CreateBrowser();
        var jwks = new JsonWebKeySet(await browser.GetStringAsync("/t/acme/.well-known/jwks"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(form["logout_token"].ToString(), new TokenValidationParameters
        {
            ValidIssuer = "http://localhost/t/acme",
            ValidAudience = clientId,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["logout+jwt"],
            LifetimeValidator = (_, expires, _, _) => expires is not null,
        });
        Assert.True(result.IsValid, result.Exception?.ToString());
        var token = (JsonWebToken)result.SecurityToken;
        Assert.Equal("RS256", token.Alg);
        Assert.False(token.TryGetClaim("nonce", out _));
        Assert.True(token.TryGetClaim("jti", out _));
        Assert.Equal(TimeSpan.FromMinutes(2), token.ValidTo - token.IssuedAt);
        var events = JsonDocument.Parse(token.GetClaim("events").Value).RootElement;
        Assert.Equal(JsonValueKind.Object, events.GetProperty("http://schemas.openid.net/event/backchannel-logout").ValueKind);
        return token;
    }

    private static string Claim(string jwt, string type) => new JsonWebToken(jwt).GetClaim(type).Value;
}
