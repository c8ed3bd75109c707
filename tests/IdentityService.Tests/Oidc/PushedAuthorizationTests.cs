using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// Pushed authorization requests (RFC 9126): a client posts its authorization request to <c>connect/par</c> and sends
/// the browser to <c>connect/authorize</c> with the <c>request_uri</c> alone, so the request's parameters are neither
/// shown in the browser nor changed on the way, through the sign-in and consent pages too.
/// </summary>
public sealed class PushedAuthorizationTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string Secret = "partner-secret-0123456789abcdef";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _userId = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        await _factory.CreateWebClientAsync("acme", clientId: "partner", firstParty: false, secret: Secret, scopes: ["openid", "email", "offline_access"]);
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task APushedRequest_SignsInThroughThePage_WithoutItsParametersInAnyUrl_AndGivesTokens()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web") { Pushed = true };
        var start = await flow.StartAsync();

        var login = OidcFlow.Location(await browser.GetAsync(start));
        Assert.Equal("/t/acme/login", login.AbsolutePath);
        var returnUrl = QueryHelpers.ParseQuery(login.Query)["ReturnUrl"].ToString();
        Assert.Equal(start, returnUrl);

        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        Assert.Equal(_userId, new JsonWebToken(tokens.GetProperty("id_token").GetString()).Subject);
    }

    [Fact]
    public async Task PromptLogin_InAPushedRequest_AsksToSignInOnce_EvenWhenSignedIn()
    {
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").GetCodeAsync("ada@acme.test", Password);
        _factory.Time.Advance(TimeSpan.FromMinutes(5));
        var flow = new OidcFlow(browser, "acme", "web") { Pushed = true };
        flow.Extra["prompt"] = "login";
        var start = await flow.StartAsync();
        Assert.Equal("/t/acme/login", OidcFlow.Location(await browser.GetAsync(start)).AbsolutePath);

        var tokens = await flow.SignInAsync("ada@acme.test", Password);

        var signedInAt = long.Parse(new JsonWebToken(tokens.GetProperty("id_token").GetString()).GetClaim("auth_time").Value);
        Assert.InRange(_factory.Time.GetUtcNow().ToUnixTimeSeconds() - signedInAt, 0, 2);
    }

    [Fact]
    public async Task PromptConsent_InAPushedRequest_AsksOnce_ForTheScopesPushed()
    {
        using var browser = _factory.CreateBrowser();
        var first = new OidcFlow(browser, "acme", "partner", Secret) { Pushed = true, Scope = "openid email" };
        var login = OidcFlow.Location(await browser.GetAsync(await first.StartAsync()));
        var consent = OidcFlow.Location(await browser.GetAsync((await first.SignInOnPageAsync(login, "ada@acme.test", Password)).PathAndQuery));
        Assert.Equal("/t/acme/consent", consent.AbsolutePath);
        var page = await browser.GetStringAsync(consent.PathAndQuery);
        Assert.Contains("<li>email</li>", page);
        var allowed = await OidcFlow.AnswerConsentAsync(browser, consent, page);
        Assert.StartsWith(OidcFlow.RedirectUri, OidcFlow.Location(await browser.GetAsync(allowed.PathAndQuery)).ToString());

        // Consented now: prompt=consent asks once more, then the code comes.
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        var again = new OidcFlow(browser, "acme", "partner", Secret) { Pushed = true, Scope = "openid email" };
        again.Extra["prompt"] = "consent";
        var start = await again.StartAsync();
        var asked = OidcFlow.Location(await browser.GetAsync(start));
        Assert.Equal("/t/acme/consent", asked.AbsolutePath);
        var back = await OidcFlow.AnswerConsentAsync(browser, asked, await browser.GetStringAsync(asked.PathAndQuery));
        Assert.Equal(start, back.PathAndQuery);
        var code = OidcFlow.Location(await browser.GetAsync(back.PathAndQuery));
        Assert.StartsWith(OidcFlow.RedirectUri, code.ToString());
        var redeemed = await again.RedeemAsync(QueryHelpers.ParseQuery(code.Query)["code"].ToString());
        Assert.Equal(HttpStatusCode.OK, redeemed.StatusCode);
    }

    [Fact]
    public async Task TheTermsPage_SendsAPushedRequestBackWithItsRequestUri()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { terms = new { url = "https://acme.example/terms", askAtSignIn = true } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        var flow = new OidcFlow(browser, "acme", "web") { Pushed = true };
        var start = await flow.StartAsync();

        var terms = OidcFlow.Location(await browser.GetAsync(start));
        Assert.Equal("/t/acme/terms", terms.AbsolutePath);
        var page = await browser.GetStringAsync(terms.PathAndQuery);
        using var accepted = await browser.PostAsync("/t/acme/terms", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["ReturnUrl"] = WebUtility.HtmlDecode(OidcFlow.Hidden(page, "ReturnUrl")),
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(page),
        }));

        var back = OidcFlow.Location(accepted);
        Assert.Equal(start, back.PathAndQuery);
        var code = OidcFlow.Location(await browser.GetAsync(back.PathAndQuery));
        Assert.StartsWith(OidcFlow.RedirectUri, code.ToString());
        Assert.Equal(HttpStatusCode.OK, (await flow.RedeemAsync(QueryHelpers.ParseQuery(code.Query)["code"].ToString())).StatusCode);
    }

    [Fact]
    public async Task AClientThatMustPush_IsRefusedAPlainRequest_AndAcceptedAPushedOne()
    {
        var updated = await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/clients/partner", new { requirePushedAuthorization = true }, HttpStatusCode.OK);
        Assert.True(updated["requirePushedAuthorization"]!.GetValue<bool>());
        using var browser = _factory.CreateBrowser();

        // Refused on the service's own error page: a request anyone could have made is not answered at its redirect URI.
        var plain = new OidcFlow(browser, "acme", "partner", Secret) { Scope = "openid email" };
        using var refused = await browser.GetAsync(plain.AuthorizeUrl());
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Null(refused.Headers.Location);

        var pushed = new OidcFlow(browser, "acme", "partner", Secret) { Pushed = true, Scope = "openid email" };
        Assert.Equal("/t/acme/login", OidcFlow.Location(await browser.GetAsync(await pushed.StartAsync())).AbsolutePath);

        // A later change that does not name it keeps it; only a client that signs people in can be made to push.
        var kept = await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/clients/partner", new { displayName = "Partner" }, HttpStatusCode.OK);
        Assert.True(kept["requirePushedAuthorization"]!.GetValue<bool>());
        var service = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients",
            new { clientId = "service", generateSecret = true, grantTypes = new[] { "client_credentials" }, requirePushedAuthorization = true });
        Assert.Equal(HttpStatusCode.BadRequest, service.StatusCode);
        Assert.Contains("requirePushedAuthorization", await service.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ParametersBesideTheRequestUri_DoNotChangeThePushedRequest()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web") { Pushed = true };
        var code = await flow.GetCodeAsync("ada@acme.test", Password);
        Assert.NotEmpty(code);

        var tampered = await flow.StartAsync() + "&redirect_uri=" + Uri.EscapeDataString("https://evil.example/cb") + "&scope=openid%20phone";
        using var response = await browser.GetAsync(tampered);
        var location = response.Headers.Location?.ToString() ?? "";
        Assert.DoesNotContain("evil.example", location);
    }

    [Fact]
    public async Task Discovery_NamesTheEndpoint()
    {
        using var api = _factory.CreateApi();
        var discovery = JsonNode.Parse(await api.GetStringAsync("/t/acme/.well-known/openid-configuration"))!;
        Assert.Equal("http://localhost/t/acme/connect/par", discovery["pushed_authorization_request_endpoint"]!.GetValue<string>());
        var client = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/clients/web", expected: HttpStatusCode.OK);
        Assert.False(client["requirePushedAuthorization"]!.GetValue<bool>());
    }
}
