using System.Net;
using System.Text.RegularExpressions;
using IdentityService.SignIn.Pages;
using IdentityService.SignIn.Pages.Account;
using IdentityService.Tests.Infrastructure;
using OtpNet;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// "Don't ask again on this browser": where the tenant allows it (<c>mfa.rememberBrowserDays</c>), a browser the
/// person ticked it on skips the second step for those days, and no other browser does; a new password, the
/// person's "ask on every browser again", the tenant turning it off and risk-based step-up all end or pass it.
/// </summary>
public sealed partial class RememberedBrowserTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";
    private IdentityServiceFactory _factory = null!;
    private string _userId = "";
    private string _secret = "";

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        await _factory.CreateTenantAsync(Tenant);
        _userId = await _factory.CreateUserAsync(Tenant, Email, Password);
        await PolicyAsync(new { mode = "required", factors = new[] { "totp" }, rememberBrowserDays = 30 });
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ARememberedBrowser_SkipsTheSecondStepForTheDays_AndNoOtherBrowserDoes()
    {
        var browser = await EnrollAsync(remember: true);
        Assert.Equal("/t/acme/after", await SignInAsync(browser));
        Assert.StartsWith("/t/acme/mfa", await SignInAsync(_factory.CreateBrowser()));

        // The trail says why no second factor was asked.
        var trace = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=signin.succeeded&limit=1", expected: HttpStatusCode.OK))["items"]![0]!["details"]!["steps"]!.AsArray();
        Assert.Contains(trace, s => s!["step"]!.GetValue<string>() == "RequireSecondFactor" && s["detail"]?.GetValue<string>() == "remembered_browser");

        _factory.Time.Advance(TimeSpan.FromDays(30));
        Assert.StartsWith("/t/acme/mfa", await SignInAsync(browser));
    }

    [Fact]
    public async Task NotTicked_TheBrowserIsAskedAgain_AndTheBoxIsOfferedOnlyWhereTheTenantAllowsIt()
    {
        var browser = await EnrollAsync(remember: false);
        Assert.StartsWith("/t/acme/mfa", await SignInAsync(browser));
        Assert.Contains("Don't ask again on this browser for 30 days", await browser.GetStringAsync("/t/acme/mfa"));

        await PolicyAsync(new { rememberBrowserDays = 0 });
        Assert.StartsWith("/t/acme/mfa", await SignInAsync(browser));
        Assert.DoesNotContain("name=\"RememberBrowser\"", await browser.GetStringAsync("/t/acme/mfa"));

        var refused = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { rememberBrowserDays = 91 } });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("mfa.rememberBrowserDays", await refused.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task TheTrustEnds_WithANewPassword_WithTheTenantTurningItOff_AndOnTheSecurityPage()
    {
        var browser = await EnrollAsync(remember: true);

        // The tenant turns it off: the browser is asked, and trusted again once it is back on.
        await PolicyAsync(new { rememberBrowserDays = 0 });
        Assert.StartsWith("/t/acme/mfa", await SignInAsync(browser));
        await PolicyAsync(new { rememberBrowserDays = 30 });
        Assert.Equal("/t/acme/after", await SignInAsync(browser));

        // The person asks every browser again, from the security page.
        var page = await browser.GetStringAsync("/t/acme/account/security");
        Assert.Contains("1 browser skips the second step at sign-in.", page);
        var forgotten = await browser.PostAsync("/t/acme/account/security?handler=forgetbrowsers", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(page),
        }));
        Assert.Contains(SecurityModel.BrowsersForgottenMessage, await forgotten.Content.ReadAsStringAsync());
        Assert.StartsWith("/t/acme/mfa", await SignInAsync(browser));

        // Trusted again, then a new password set by an admin ends it.
        var again = await EnrollAsync(remember: true, enrolled: true);
        Assert.Equal("/t/acme/after", await SignInAsync(again));
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { password = "another horse battery staple" }, HttpStatusCode.OK);
        var answer = await new SignInPage(again, Tenant).PostAsync(Email, "another horse battery staple", query: "?ReturnUrl=%2Ft%2Facme%2Fafter");
        Assert.StartsWith("/t/acme/mfa", answer.Location!.OriginalString);
    }

    [Fact]
    public async Task RiskBasedStepUp_StillAsks_ARememberedBrowser()
    {
        var browser = await EnrollAsync(remember: true);
        await PolicyAsync(new { stepUp = new { enabled = true, newDevice = false, newCountry = false, recentFailuresFromIp = true } });
        Assert.Equal("/t/acme/after", await SignInAsync(browser));

        // A wrong password for another account from this address is a risk signal for the next sign-in from it.
        await _factory.CreateUserAsync(Tenant, "bob@acme.test", Password);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("bob@acme.test", "wrong horse battery staple")).Refused);
        Assert.StartsWith("/t/acme/mfa", await SignInAsync(browser));
    }

    [Fact]
    public async Task APasswordAloneOnARememberedBrowser_ChangesNoSecondFactor_UntilItSignsInWithOne()
    {
        // Someone at the remembered browser (a shared computer) who knows the password: no second step is asked.
        var browser = await EnrollAsync(remember: true);
        _factory.Time.Advance(TimeSpan.FromMinutes(20));
        Assert.Equal("/t/acme/after", await SignInAsync(browser));

        // New recovery codes would be a second factor that works from any browser: refused, with the way on.
        var made = await PageForms.PostAsync(browser, "/t/acme/account/security?handler=recovery", [], "/t/acme/account/security");
        Assert.Empty(RecoveryCodeTests.Codes(made));
        Assert.Contains(SecurityModel.SecondStepMessage, WebUtility.HtmlDecode(made));
        var link = WebUtility.HtmlDecode(Regex.Match(made, "href=\"([^\"]+)\" id=\"sign-in-again\"").Groups[1].Value);
        Assert.StartsWith("/t/acme/login?", link);

        // That link asks the second step even here; answered, the codes are made.
        var again = await new SignInPage(browser, Tenant).PostAsync(Email, Password, query: link["/t/acme/login".Length..]);
        Assert.StartsWith("/t/acme/mfa", again.Location!.OriginalString);
        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        var mfa = await browser.GetStringAsync("/t/acme/mfa");
        var done = await browser.PostAsync("/t/acme/mfa", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Factor"] = "totp",
            ["Code"] = new Totp(Base32Encoding.ToBytes(_secret)).ComputeTotp(_factory.Time.GetUtcNow().UtcDateTime),
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(mfa),
        }));
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        var codes = RecoveryCodeTests.Codes(await PageForms.PostAsync(browser, "/t/acme/account/security?handler=recovery", [], "/t/acme/account/security"));
        Assert.Equal(10, codes.Count);
    }

    private Task PolicyAsync(object mfa) =>
        _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa }, HttpStatusCode.OK);

    /// <summary>Signs in with the password; answers where the sign-in page sends the browser.</summary>
    private static async Task<string> SignInAsync(HttpClient browser) =>
        (await new SignInPage(browser, Tenant).PostAsync(Email, Password, query: "?ReturnUrl=%2Ft%2Facme%2Fafter")).Location!.OriginalString;

    /// <summary>
    /// A first sign-in that sets up the app (or, when <paramref name="enrolled"/>, uses the one set up before), with the
    /// box ticked or not; answers the browser.
    /// </summary>
    private async Task<HttpClient> EnrollAsync(bool remember, bool enrolled = false)
    {
        var browser = _factory.CreateBrowser();
        Assert.StartsWith("/t/acme/mfa", await SignInAsync(browser));
        var page = await browser.GetStringAsync("/t/acme/mfa");
        if (!enrolled)
        {
            _secret = Secret().Match(page).Groups[1].Value;
        }

        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        var fields = new Dictionary<string, string>
        {
            ["Factor"] = "totp",
            ["Code"] = new Totp(Base32Encoding.ToBytes(_secret)).ComputeTotp(_factory.Time.GetUtcNow().UtcDateTime),
            ["ReturnUrl"] = "/t/acme/after",
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(page),
        };
        if (remember)
        {
            fields["RememberBrowser"] = "true";
        }

        var done = await browser.PostAsync("/t/acme/mfa", new FormUrlEncodedContent(fields));
        Assert.True(done.StatusCode is HttpStatusCode.OK or HttpStatusCode.Redirect, $"The second step answered {(int)done.StatusCode}.");
        return browser;
    }

    [GeneratedRegex("<code id=\"secret\">([A-Z2-7]+)</code>")]
    private static partial Regex Secret();
}
