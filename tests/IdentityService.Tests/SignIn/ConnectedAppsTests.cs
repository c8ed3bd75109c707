using System.Net;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A person sees which apps have access to their account and removes one's access on <c>/account/apps</c>; an admin
/// does the same through <c>/api/v1/tenants/{tenant}/users/{id}/apps</c>. Removing access ends that app's tokens at
/// once and nothing else.
/// </summary>
public sealed class ConnectedAppsTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _userId = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        await _factory.CreateWebClientAsync("acme", clientId: "partner", firstParty: false, scopes: ["openid", "email", "offline_access"]);
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ThePage_ListsTheApps_AndRemovingOne_EndsItsTokensOnly()
    {
        using var browser = _factory.CreateBrowser();
        var web = new OidcFlow(browser, "acme", "web");
        var webTokens = await web.SignInAsync("ada@acme.test", Password);
        var partner = new OidcFlow(browser, "acme", "partner") { Scope = "openid email offline_access" };
        var partnerTokens = await ConsentAndSignInAsync(browser, partner);

        var page = await browser.GetStringAsync("/t/acme/account/apps");
        Assert.Contains("partner app", page);
        Assert.Contains("You allowed: email, offline_access, openid", page);
        Assert.Contains("data-client=\"web\"", page);

        var after = await PageForms.PostAsync(browser, "/t/acme/account/apps?handler=revoke", new() { ["clientId"] = "partner" }, "/t/acme/account/apps");

        Assert.Contains("partner app no longer has access to your account.", after);
        Assert.DoesNotContain("data-client=\"partner\"", after);
        Assert.Contains("data-client=\"web\"", after);
        Assert.Equal(HttpStatusCode.BadRequest, (await partner.RefreshAsync(partnerTokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await partner.UserInfoStatusAsync(partnerTokens.GetProperty("access_token").GetString()!));
        Assert.Equal(HttpStatusCode.OK, (await web.RefreshAsync(webTokens.GetProperty("refresh_token").GetString()!)).StatusCode);

        // This browser is still signed in, and the third-party app must ask for consent again.
        var again = new OidcFlow(browser, "acme", "partner") { Scope = "openid email" };
        Assert.EndsWith("/t/acme/consent", OidcFlow.Location(await browser.GetAsync(again.AuthorizeUrl())).AbsolutePath);

        var entry = Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.app_revoked", expected: HttpStatusCode.OK))["items"]!.AsArray())!;
        Assert.Equal($"user:{_userId}@acme", entry["actor"]!.GetValue<string>());
        Assert.Equal("partner", entry["details"]!["client"]!.GetValue<string>());
    }

    [Fact]
    public async Task AConsent_FromASessionANewPasswordEnded_IsNotKept()
    {
        // A browser signed in (a stolen cookie, say) reaches the consent page of a third-party app.
        using var stolen = _factory.CreateBrowser();
        Assert.True((await new SignInPage(stolen, "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        var flow = new OidcFlow(stolen, "acme", "partner") { Scope = "openid email offline_access" };
        var consent = new Uri(new Uri("http://localhost"), "/t/acme/consent?ReturnUrl=" + Uri.EscapeDataString(flow.AuthorizeUrl()));
        var page = await stolen.GetStringAsync(consent.PathAndQuery);

        // The owner's new password ends every session made before.
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { password = "another horse battery staple" }, HttpStatusCode.OK);
        await OidcFlow.AnswerConsentAsync(stolen, consent, page);

        // No consent is kept for the app: the owner is still asked at its next request.
        var apps = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}/apps", expected: HttpStatusCode.OK);
        Assert.DoesNotContain("partner", apps.ToJsonString());
    }

    [Fact]
    public async Task ThePage_NeedsASignIn_AndListsNoSignInWhoseTokensHaveExpired()
    {
        using var anonymous = _factory.CreateBrowser();
        var redirect = await anonymous.GetAsync("/t/acme/account/apps");
        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        Assert.Contains("/t/acme/login", OidcFlow.Location(redirect).ToString());

        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        await ConsentAndSignInAsync(browser, new OidcFlow(browser, "acme", "partner") { Scope = "openid email" });
        Assert.Equal(2, (await AppsAsync()).Count);

        // 15 days on, the sign-ins' refresh tokens (14 days) have expired; the consent stays until withdrawn.
        _factory.Time.Advance(TimeSpan.FromDays(15));
        var apps = await AppsAsync();
        var left = Assert.Single(apps);
        Assert.Equal("partner", left.GetProperty("clientId").GetString());
        Assert.Equal(0, left.GetProperty("signIns").GetInt32());
        Assert.Equal(["email", "openid"], left.GetProperty("consentedScopes").EnumerateArray().Select(s => s.GetString()));
    }

    [Fact]
    public async Task AnAdmin_ListsAndRemovesAnApp_AsThePersonDoes()
    {
        using var browser = _factory.CreateBrowser();
        var web = new OidcFlow(browser, "acme", "web");
        var tokens = await web.SignInAsync("ada@acme.test", Password);
        var app = Assert.Single(await AppsAsync());
        Assert.Equal("web", app.GetProperty("clientId").GetString());
        Assert.True(app.GetProperty("firstParty").GetBoolean());
        Assert.Equal(1, app.GetProperty("signIns").GetInt32());

        var removed = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{_userId}/apps/web");

        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        Assert.Empty(await AppsAsync());
        Assert.Equal(HttpStatusCode.BadRequest, (await web.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        var again = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{_userId}/apps/web");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Contains("app_not_found", await again.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{Guid.NewGuid()}/apps")).StatusCode);
        var entry = Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.app_revoked", expected: HttpStatusCode.OK))["items"]!.AsArray())!;
        Assert.Equal("web", entry["clientId"]!.GetValue<string>());
        Assert.StartsWith("client:", entry["actor"]!.GetValue<string>());
    }

    private async Task<List<JsonElement>> AppsAsync()
    {
        // A new admin token each time: the tests move the clock past a token's hour.
        var token = await _factory.ClientCredentialsTokenAsync("system", _factory.AdminClientId, _factory.AdminClientSecret!, "manage");
        var response = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}/apps", token: token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("items").EnumerateArray().ToList();
    }

    /// <summary>A browser already signed in allows the third-party app on the consent page, and the app redeems its code.</summary>
    private static async Task<JsonElement> ConsentAndSignInAsync(HttpClient browser, OidcFlow flow)
    {
        var consent = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        Assert.EndsWith("/t/acme/consent", consent.AbsolutePath);
        var allowed = await OidcFlow.AnswerConsentAsync(browser, consent, await browser.GetStringAsync(consent.PathAndQuery));
        var code = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(OidcFlow.Location(await browser.GetAsync(allowed.PathAndQuery)).Query)["code"].ToString();
        var redeemed = await flow.RedeemAsync(code);
        Assert.Equal(HttpStatusCode.OK, redeemed.StatusCode);
        return JsonDocument.Parse(await redeemed.Content.ReadAsStringAsync()).RootElement.Clone();
    }
}
