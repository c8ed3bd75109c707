using System.Net;
using System.Text.RegularExpressions;
using IdentityService.SignIn.Pages;
using IdentityService.SignIn.Pages.Account;
using IdentityService.Tests.Infrastructure;
using OtpNet;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// The account's security page: a signed-in person sets up an authenticator app, removes it with a code from it,
/// and, where the policy is optional, chooses to be asked a second step; changes need a recent sign-in.
/// </summary>
public sealed partial class AccountSecurityTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";
    private const string Page = "/t/acme/account/security";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);

        await _factory.CreateTenantAsync(Tenant);
        await _factory.CreateUserAsync(Tenant, Email, Password);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "optional" } }, HttpStatusCode.OK);
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task SignedOut_ThePageSendsToTheSignInPage_AndBack()
    {
        var answer = await _factory.CreateBrowser().GetAsync(Page);
        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        Assert.Equal("/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fsecurity", answer.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task AnAppSetUpHere_IsAskedAtTheNextSignIn_AndRemovedOnlyWithACodeFromIt()
    {
        // The app is the only factor the tenant allows: removing it goes back to the password alone.
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { factors = new[] { "totp" } } }, HttpStatusCode.OK);
        using var browser = await SignedInAsync();
        var setup = await PostAsync(browser, "setup", []);
        var secret = Secret().Match(setup).Groups[1].Value;
        Assert.Contains("src=\"data:image/png;base64,", setup);

        Assert.Contains(SecurityModel.WrongCodeMessage, await PostAsync(browser, "enroll", new() { ["Pending"] = Hidden(setup, "Pending"), ["Code"] = "000000" }, setup));
        var enrolled = await PostAsync(browser, "enroll", new() { ["Pending"] = Hidden(setup, "Pending"), ["Code"] = Code(secret) }, setup);
        Assert.Contains(SecurityModel.EnrolledMessage, enrolled);
        Assert.Contains("An authenticator app is set up.", enrolled);

        // Optional policy, enrolled account: the next sign-in asks the app's code.
        var next = await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync(Email, Password);
        Assert.StartsWith("/t/acme/mfa", next.Location!.OriginalString);

        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Contains(SecurityModel.WrongCodeMessage, await PostAsync(browser, "remove", new() { ["Code"] = "000000" }));
        var removed = await PostAsync(browser, "remove", new() { ["Code"] = Code(secret) });
        Assert.Contains(SecurityModel.RemovedMessage, removed);
        Assert.DoesNotContain(SecurityModel.StillAskedMessage, removed);
        Assert.DoesNotContain("id=\"remove\"", await browser.GetStringAsync(Page));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync(Email, Password)).SignedIn);
        var types = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=mfa.*", expected: HttpStatusCode.OK))["items"]!.AsArray()
            .Select(i => i!["type"]!.GetValue<string>() + ":" + i["actor"]!.GetValue<string>()[..5]);
        Assert.Equal(["mfa.removed:user:", "mfa.enrolled:user:", "mfa.recovery_codes_created:user:"], types.Take(1).Concat(types.Skip(1).Order(StringComparer.Ordinal)));
    }

    [Fact]
    public async Task RemovingTheApp_WhereEmailCodesCanBeAsked_KeepsTheSecondStep()
    {
        // A second step the person set up is not turned off by removing one way of answering it.
        using var browser = await SignedInAsync();
        var setup = await PostAsync(browser, "setup", []);
        var secret = Secret().Match(setup).Groups[1].Value;
        Assert.Contains(SecurityModel.EnrolledMessage, await PostAsync(browser, "enroll", new() { ["Pending"] = Hidden(setup, "Pending"), ["Code"] = Code(secret) }, setup));

        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        var removed = await PostAsync(browser, "remove", new() { ["Code"] = Code(secret) });
        Assert.Contains(SecurityModel.RemovedMessage + " " + SecurityModel.StillAskedMessage, removed);
        Assert.Contains("Sign-ins ask for a second step.", removed);
        Assert.DoesNotContain("id=\"remove\"", removed);

        // The next sign-in asks the code sent by email, and the recovery codes still stand in for it.
        var next = await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync(Email, Password);
        Assert.StartsWith("/t/acme/mfa", next.Location!.OriginalString);
        Assert.Matches("You have [0-9]+ recovery codes left.", await browser.GetStringAsync(Page));
        var events = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=mfa.removed", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.True(Assert.Single(events)!["details"]!["stillAsked"]!.GetValue<bool>());
    }

    [Fact]
    public async Task InRequiredMode_RemovingTheApp_KeepsTheRecoveryCodes_WhileEmailCodesCanBeAsked()
    {
        using var browser = await SignedInAsync();
        var setup = await PostAsync(browser, "setup", []);
        var secret = Secret().Match(setup).Groups[1].Value;
        await PostAsync(browser, "enroll", new() { ["Pending"] = Hidden(setup, "Pending"), ["Code"] = Code(secret) }, setup);

        // Signed in with the app, the person stops being asked (optional); then the tenant requires a second step.
        using var strong = _factory.CreateBrowser();
        await new SignInPage(strong, Tenant).PostAsync(Email, Password);
        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        var done = await strong.PostAsync("/t/acme/mfa", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Factor"] = "totp",
            ["Code"] = Code(secret),
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(await strong.GetStringAsync("/t/acme/mfa")),
        }));
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        Assert.Contains("Sign-ins ask for your password only.", await PostAsync(strong, "ask", new() { ["ask"] = "false" }));
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "required" } }, HttpStatusCode.OK);

        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        var removed = await PostAsync(strong, "remove", new() { ["Code"] = Code(secret) });

        Assert.Contains(SecurityModel.RemovedMessage, removed);
        Assert.Matches("You have [0-9]+ recovery codes left.", removed);
    }

    [Fact]
    public async Task WrongCodesToRemoveTheApp_CountOnTheAccountsLockout()
    {
        using var browser = await SignedInAsync();
        var setup = await PostAsync(browser, "setup", []);
        var secret = Secret().Match(setup).Groups[1].Value;
        await PostAsync(browser, "enroll", new() { ["Pending"] = Hidden(setup, "Pending"), ["Code"] = Code(secret) }, setup);
        for (var i = 0; i < 10; i++)
        {
            await PostAsync(browser, "remove", new() { ["Code"] = "000000" });
        }

        // Locked: even the right code does not remove the app now.
        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Contains(SecurityModel.WrongCodeMessage, await PostAsync(browser, "remove", new() { ["Code"] = Code(secret) }));
        Assert.Contains("An authenticator app is set up.", await browser.GetStringAsync(Page));
    }

    [Fact]
    public async Task AChange_NeedsASignInOfTheLastTenMinutes()
    {
        using var browser = await SignedInAsync();
        _factory.Time.Advance(TimeSpan.FromMinutes(11));
        var stale = await PostAsync(browser, "setup", []);
        Assert.Contains(SecurityModel.StaleMessage, stale);
        Assert.DoesNotContain("data:image/png", stale);
        Assert.Contains("id=\"sign-in-again\"", stale);
    }

    [Fact]
    public async Task EmailCodes_CanBeTurnedOn_ButOffOnlyAfterASignInWithThem()
    {
        using var browser = await SignedInAsync();
        var on = await PostAsync(browser, "ask", new() { ["ask"] = "true" });
        Assert.Contains("Sign-ins ask for a second step.", on);

        // The next sign-in needs the emailed code; the session made with the password alone cannot turn it off.
        Assert.StartsWith("/t/acme/mfa", (await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync(Email, Password)).Location!.OriginalString);
        Assert.Contains(SecurityModel.SecondStepMessage, await PostAsync(browser, "ask", new() { ["ask"] = "false" }));

        using var strong = _factory.CreateBrowser();
        await new SignInPage(strong, Tenant).PostAsync(Email, Password);
        var mfa = await strong.GetStringAsync("/t/acme/mfa");
        await strong.PostAsync("/t/acme/mfa?handler=send", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Factor"] = "email",
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(mfa),
        }));
        await Eventually.TrueAsync(() => _smtp.Messages.Count == 1, "The code was not mailed.");
        var code = Regex.Match(_smtp.Messages.Last().Subject!, "[0-9]{6}").Value;
        var done = await strong.PostAsync("/t/acme/mfa", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Factor"] = "email",
            ["Code"] = code,
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(await strong.GetStringAsync("/t/acme/mfa")),
        }));
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        Assert.Contains("Sign-ins ask for your password only.", await PostAsync(strong, "ask", new() { ["ask"] = "false" }));
    }

    private async Task<HttpClient> SignedInAsync()
    {
        var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, Tenant).PostAsync(Email, Password)).SignedIn);
        return browser;
    }

    private static async Task<string> PostAsync(HttpClient browser, string handler, Dictionary<string, string> fields, string? form = null)
    {
        fields["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(form ?? await browser.GetStringAsync(Page));
        var response = await browser.PostAsync($"{Page}?handler={handler}", new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private static string Hidden(string html, string name) => WebUtility.HtmlDecode(OidcFlow.Hidden(html, name));

    private string Code(string secret) => new Totp(Base32Encoding.ToBytes(secret)).ComputeTotp(_factory.Time.GetUtcNow().UtcDateTime);

    [GeneratedRegex("<code id=\"secret\">([A-Z2-7]+)</code>")]
    private static partial Regex Secret();
}
