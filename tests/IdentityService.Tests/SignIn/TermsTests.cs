using System.Net;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// Where a tenant asks it (<c>terms.askAtSignIn</c>), an account that has not accepted its current terms of service
/// accepts them at its next sign-in to an app, before the app gets a code; once per version of the terms.
/// </summary>
public sealed class TermsTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string Terms = "https://acme.example/terms/2026-12";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _userId = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { terms = new { url = Terms, askAtSignIn = true } }, HttpStatusCode.OK);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task AnAccountWithoutTheTerms_AcceptsThemOnce_BeforeTheAppGetsACode()
    {
        using var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        var flow = new OidcFlow(browser, "acme", "web");

        var terms = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        Assert.Equal("/t/acme/terms", terms.AbsolutePath);
        var page = await browser.GetStringAsync(terms.PathAndQuery);
        Assert.Contains($"href=\"{Terms}\"", page);
        Assert.Contains("Before you go on", page);

        var accepted = await browser.PostAsync("/t/acme/terms", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["ReturnUrl"] = WebUtility.HtmlDecode(OidcFlow.Hidden(page, "ReturnUrl")),
            ["__RequestVerificationToken"] = OidcFlow.Hidden(page, "__RequestVerificationToken"),
        }));
        var back = OidcFlow.Location(accepted);
        Assert.Equal("/t/acme/connect/authorize", back.AbsolutePath);
        Assert.Contains("code=", OidcFlow.Location(await browser.GetAsync(back.PathAndQuery)).Query);

        var user = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}", expected: HttpStatusCode.OK);
        Assert.Equal(Terms, user["acceptedTermsUrl"]!.GetValue<string>());
        var entry = Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.terms_accepted", expected: HttpStatusCode.OK))["items"]!.AsArray())!;
        Assert.Equal(Terms, entry["details"]!["terms"]!.GetValue<string>());

        // Accepted: the next request goes straight on; new terms are asked again, saying they changed.
        Assert.Contains("code=", OidcFlow.Location(await browser.GetAsync(new OidcFlow(browser, "acme", "web").AuthorizeUrl())).Query);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { terms = new { url = Terms + "-v2" } }, HttpStatusCode.OK);
        var again = OidcFlow.Location(await browser.GetAsync(new OidcFlow(browser, "acme", "web").AuthorizeUrl()));
        Assert.Equal("/t/acme/terms", again.AbsolutePath);
        Assert.Contains("The terms of service have changed.", await browser.GetStringAsync(again.PathAndQuery));
    }

    [Fact]
    public async Task WithPromptNone_TheAppIsToldInteractionIsRequired()
    {
        using var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        var flow = new OidcFlow(browser, "acme", "web");
        flow.Extra["prompt"] = "none";

        var answer = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));

        Assert.StartsWith(OidcFlow.RedirectUri, answer.ToString());
        Assert.Contains("error=interaction_required", answer.Query);
    }

    [Fact]
    public async Task NotAsked_WhereTheTenantDoesNotAsk_AndTheSettingNeedsTerms()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { terms = new { askAtSignIn = false } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        var bad = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { terms = new { url = (string?)null, askAtSignIn = true } });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("terms.askAtSignIn", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ThePage_NeedsASignIn()
    {
        var response = await _factory.CreateBrowser().GetAsync("/t/acme/terms");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Contains("/t/acme/login", OidcFlow.Location(response).ToString());
    }
}
