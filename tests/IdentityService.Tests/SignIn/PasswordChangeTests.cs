using System.Net;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;
using IdentityService.Users;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A signed-in person changes their password on <c>/account/password</c>, with a real SMTP server on this machine:
/// the current password is needed and counts towards the lockout, the new one meets the tenant's rules, the other
/// sessions and grants end while this browser stays signed in, and the owner is mailed.
/// </summary>
public sealed class PasswordChangeTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string OldPassword = "correct horse battery staple";
    private const string NewPassword = "a brand new long passphrase";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);

        await _factory.CreateTenantAsync(Tenant);
        await _factory.CreateWebClientAsync(Tenant);
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", OldPassword);
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task AChange_NeedsTheCurrentPassword_EndsTheOtherSessionsAndGrants_AndKeepsThisBrowserSignedIn()
    {
        using var here = await SignedInAsync(OldPassword);
        using var elsewhere = await SignedInAsync(OldPassword);
        using var app = _factory.CreateBrowser();
        var tokens = await new OidcFlow(app, Tenant, "web").SignInAsync("ada@acme.test", OldPassword);

        var form = await here.GetStringAsync("/t/acme/account/password");
        Assert.Contains("autocomplete=\"current-password\"", form);
        Assert.Contains("autocomplete=\"new-password\"", form);
        Assert.Contains(PasswordChanges.WrongPasswordMessage, await ChangeAsync(here, "not my password", NewPassword));
        Assert.Contains("Your password is changed.", await ChangeAsync(here, OldPassword, NewPassword));

        Assert.Equal(HttpStatusCode.OK, (await here.GetAsync("/t/acme/account/password")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await elsewhere.GetAsync("/t/acme/account/security")).StatusCode);
        var refreshed = await new OidcFlow(app, Tenant, "web").RefreshAsync(tokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.BadRequest, refreshed.StatusCode);
        var page = new SignInPage(_factory.CreateBrowser(), Tenant);
        Assert.True((await page.PostAsync("ada@acme.test", OldPassword)).Refused);
        Assert.True((await page.PostAsync("ada@acme.test", NewPassword)).SignedIn);

        var mail = await _smtp.MailToAsync("ada@acme.test");
        Assert.Equal("Your ACME password was changed", mail.Subject);
        Assert.Contains("http://localhost/t/acme/forgot-password", mail.TextBody);
        var events = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=password.changed", expected: HttpStatusCode.OK))["items"]!.AsArray()
            .Select(e => e!["outcome"]!.GetValue<string>() + ":" + (e["details"]?["reason"]?.GetValue<string>() ?? "") + ":" + e["details"]!["identifier"]!.GetValue<string>());
        Assert.Equal(["succeeded::ada@acme.test", "failed:wrong_password:ada@acme.test"], events);
    }

    [Fact]
    public async Task WrongCurrentPasswords_LockTheAccount_AsAtSignIn()
    {
        using var here = await SignedInAsync(OldPassword);
        for (var i = 0; i < 10; i++)
        {
            Assert.Contains(PasswordChanges.WrongPasswordMessage, await ChangeAsync(here, "guess " + i, NewPassword));
        }

        Assert.Contains(PasswordChanges.WrongPasswordMessage, await ChangeAsync(here, OldPassword, NewPassword));
        var page = new SignInPage(_factory.CreateBrowser(), Tenant);
        Assert.True((await page.PostAsync("ada@acme.test", OldPassword)).Refused);

        _factory.Time.Advance(TimeSpan.FromMinutes(10));
        Assert.True((await page.PostAsync("ada@acme.test", OldPassword)).SignedIn);
    }

    [Fact]
    public async Task TheNewPassword_MeetsTheRules_AndDiffersFromTheCurrentOne()
    {
        using var here = await SignedInAsync(OldPassword);

        Assert.Contains("at least 8 characters", await ChangeAsync(here, OldPassword, "short"));
        Assert.Contains("too easy to guess", await ChangeAsync(here, OldPassword, "ada@acme.test"));
        Assert.Contains("other than your current one", await ChangeAsync(here, OldPassword, OldPassword));
        Assert.Contains("The two new passwords differ.", await ChangeAsync(here, OldPassword, NewPassword, NewPassword + "!"));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("ada@acme.test", OldPassword)).SignedIn);
    }

    [Fact]
    public async Task ThePage_NeedsASignIn_AndItsMeterScoresForTheAccount()
    {
        using var stranger = _factory.CreateBrowser();
        Assert.Equal("/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fpassword", (await stranger.GetAsync("/t/acme/account/password")).Headers.Location!.OriginalString);

        using var here = await SignedInAsync(OldPassword);
        var token = SignInPage.AntiForgeryToken(await here.GetStringAsync("/t/acme/account/password"));
        var response = await here.PostAsync("/t/acme/account/password?handler=strength", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token,
            ["NewPassword"] = "ada@acme.test",
        }));
        var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.False(answer.GetProperty("acceptable").GetBoolean());
        Assert.Contains("href=\"password\" id=\"change-password\"", await here.GetStringAsync("/t/acme/account/security"));
    }

    [Fact]
    public async Task SignOutEverywhereElse_EndsTheOtherSessionsAndGrants_AndKeepsThisBrowser()
    {
        using var here = await SignedInAsync(OldPassword);
        using var elsewhere = await SignedInAsync(OldPassword);
        using var app = _factory.CreateBrowser();
        var tokens = await new OidcFlow(app, Tenant, "web").SignInAsync("ada@acme.test", OldPassword);

        var answer = await PageForms.PostAsync(here, "/t/acme/account/security?handler=signoutothers", [], "/t/acme/account/security");

        Assert.Contains(IdentityService.SignIn.Pages.Account.SecurityModel.SignedOutElsewhereMessage, answer);
        Assert.Contains("Signed in as ada@acme.test", answer);
        Assert.Equal(HttpStatusCode.OK, (await here.GetAsync("/t/acme/account/security")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await elsewhere.GetAsync("/t/acme/account/security")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await new OidcFlow(app, Tenant, "web").RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("ada@acme.test", OldPassword)).SignedIn);
        var ended = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.sessions_ended", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Single(ended);
    }

    [Fact]
    public async Task TheRenewedSession_EndsWhenTheSignInWouldHaveEnded()
    {
        using var here = await SignedInAsync(OldPassword);
        _factory.Time.Advance(TimeSpan.FromHours(7));
        Assert.Contains("Your password is changed.", await ChangeAsync(here, OldPassword, NewPassword));
        Assert.Equal(HttpStatusCode.OK, (await here.GetAsync("/t/acme/account/security")).StatusCode);

        // The tenant's sessions last 8 hours: the change 7 hours in does not start 8 more.
        _factory.Time.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));
        Assert.Equal(HttpStatusCode.Redirect, (await here.GetAsync("/t/acme/account/security")).StatusCode);
    }

    private async Task<HttpClient> SignedInAsync(string password)
    {
        var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, Tenant).PostAsync("ada@acme.test", password)).SignedIn);
        return browser;
    }

    private static Task<string> ChangeAsync(HttpClient browser, string current, string next, string? confirmation = null) =>
        PageForms.PostAsync(browser, "/t/acme/account/password", new()
        {
            ["CurrentPassword"] = current,
            ["NewPassword"] = next,
            ["ConfirmPassword"] = confirmation ?? next,
        });
}
