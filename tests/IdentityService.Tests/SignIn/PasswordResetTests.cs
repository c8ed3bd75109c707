using System.Net;
using System.Text.RegularExpressions;
using IdentityService.SignIn.Pages;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// Password reset by an emailed link, with a real SMTP server on this machine: the link comes by mail, works
/// once, for the tenant's lifetime (30 minutes by default), and asking never tells whether an account exists.
/// </summary>
public sealed partial class PasswordResetTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string OldPassword = "correct horse battery staple";
    private const string NewPassword = "a brand new long passphrase";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;
    private string _userId = "";

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);

        await _factory.CreateTenantAsync(Tenant);
        _userId = await _factory.CreateUserAsync(Tenant, "ada@acme.test", OldPassword);
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheEmailedLink_SetsANewPassword_Once()
    {
        using var browser = _factory.CreateBrowser();
        Assert.Contains("href=\"forgot-password\"", await browser.GetStringAsync("/t/acme/login"));

        var asked = await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        Assert.Contains(ForgotPasswordModel.SentMessage, asked);
        var mail = await MailToAsync("ada@acme.test");
        var link = LinkIn(mail);
        Assert.Contains("Set a new password for ACME", mail.Subject);
        Assert.StartsWith("http://localhost/t/acme/reset-password?token=", link);

        var form = await browser.GetStringAsync(link);
        Assert.Contains("autocomplete=\"new-password\"", form);
        var done = await PostFormAsync(browser, link, new() { ["NewPassword"] = NewPassword, ["ConfirmPassword"] = NewPassword });
        Assert.Contains("Your password is changed.", done);

        var page = new SignInPage(_factory.CreateBrowser(), Tenant);
        Assert.True((await page.PostAsync("ada@acme.test", OldPassword)).Refused);
        Assert.True((await page.PostAsync("ada@acme.test", NewPassword)).SignedIn);
        Assert.Contains(ResetPasswordModel.InvalidLinkMessage, await browser.GetStringAsync(link));
        var again = await PostFormAsync(_factory.CreateBrowser(), link, new() { ["NewPassword"] = "yet another long passphrase", ["ConfirmPassword"] = "yet another long passphrase" }, "/t/acme/forgot-password");
        Assert.Contains(ResetPasswordModel.InvalidLinkMessage, again);
        Assert.True((await page.PostAsync("ada@acme.test", NewPassword)).SignedIn);

        var types = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=password_reset.*", expected: HttpStatusCode.OK))["items"]!.AsArray()
            .Select(i => i!["type"]!.GetValue<string>() + ":" + i["outcome"]!.GetValue<string>() + ":" + i["userId"]!.GetValue<string>());
        Assert.Equal([$"password_reset.completed:succeeded:{_userId}", $"password_reset.requested:succeeded:{_userId}"], types);
    }

    [Fact]
    public async Task ALinkMailedToTheOldAddress_NoLongerWorks_OnceAnAdminMovedTheAccount()
    {
        // Whoever reads the old mailbox asks for a link; then an admin moves the account to a new address.
        using var oldMailbox = _factory.CreateBrowser();
        await PostFormAsync(oldMailbox, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("ada@acme.test"), "/reset-password");
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { email = "ada@new.test" }, HttpStatusCode.OK);

        var used = await PostFormAsync(oldMailbox, link, new() { ["NewPassword"] = NewPassword, ["ConfirmPassword"] = NewPassword }, "/t/acme/forgot-password");

        Assert.Contains(ResetPasswordModel.InvalidLinkMessage, used);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("ada@new.test", OldPassword)).SignedIn);
    }

    [Fact]
    public async Task ABrowserSignedInWithTheOldPassword_IsSignedOutByAResetOrAnAdminsNewPassword()
    {
        await _factory.CreateWebClientAsync(Tenant);
        using var before = _factory.CreateBrowser();
        Assert.True((await new SignInPage(before, Tenant).PostAsync("ada@acme.test", OldPassword)).SignedIn);
        Assert.Contains("code=", await SilentAuthorizeAsync(before));

        using var other = _factory.CreateBrowser();
        await PostFormAsync(other, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        var link = LinkIn(await MailToAsync("ada@acme.test"));
        await PostFormAsync(other, link, new() { ["NewPassword"] = NewPassword, ["ConfirmPassword"] = NewPassword });
        Assert.Contains("error=login_required", await SilentAuthorizeAsync(before));
        Assert.Equal("/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fsecurity", (await before.GetAsync("/t/acme/account/security")).Headers.Location!.OriginalString);

        // The same when an admin sets the password: a session made after the reset ends with it.
        using var after = _factory.CreateBrowser();
        Assert.True((await new SignInPage(after, Tenant).PostAsync("ada@acme.test", NewPassword)).SignedIn);
        Assert.Contains("code=", await SilentAuthorizeAsync(after));
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { password = "an admin's long new passphrase" }, HttpStatusCode.OK);
        Assert.Contains("error=login_required", await SilentAuthorizeAsync(after));
    }

    /// <summary>An authorization request with <c>prompt=none</c>: where the browser is sent (a code, or login_required).</summary>
    private static async Task<string> SilentAuthorizeAsync(HttpClient browser)
    {
        var flow = new OidcFlow(browser, Tenant, "web");
        flow.Extra["prompt"] = "none";
        var response = await browser.GetAsync(flow.AuthorizeUrl());
        return response.Headers.Location!.ToString();
    }

    [Fact]
    public async Task AnUnknownAddress_GetsTheSameAnswer_AndNoMail()
    {
        using var browser = _factory.CreateBrowser();

        var unknown = await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "nobody@acme.test" });
        var known = await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        await MailToAsync("ada@acme.test");

        Assert.Equal(Strip(known), Strip(unknown));
        Assert.Single(_smtp.Messages);
        var requests = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=password_reset.requested&outcome=failed", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal("unknown_account", Assert.Single(requests)!["details"]!["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task TheLink_ExpiresAfterTheTenantsLifetime()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { passwordReset = new { linkLifetimeMinutes = 10 } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        var link = LinkIn(await MailToAsync("ada@acme.test"));
        Assert.Contains("within 10 minutes", (await MailToAsync("ada@acme.test")).TextBody);

        _factory.Time.Advance(TimeSpan.FromMinutes(9));
        Assert.Contains("autocomplete=\"new-password\"", await browser.GetStringAsync(link));
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Contains(ResetPasswordModel.InvalidLinkMessage, await browser.GetStringAsync(link));
    }

    [Fact]
    public async Task ThirtyMinutes_ByDefault()
    {
        using var browser = _factory.CreateBrowser();
        await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        var link = LinkIn(await MailToAsync("ada@acme.test"));

        _factory.Time.Advance(TimeSpan.FromMinutes(29));
        Assert.Contains("autocomplete=\"new-password\"", await browser.GetStringAsync(link));
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Contains(ResetPasswordModel.InvalidLinkMessage, await browser.GetStringAsync(link));

        // An expired link is deleted when the account asks for a new one: only links that could work are stored.
        await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        using var scope = await _factory.TenantScopeAsync(Tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
        Assert.Equal(1, await db.Set<IdentityService.Users.PasswordResetToken>().CountAsync());
    }

    [Fact]
    public async Task AWeakOrMistypedPassword_IsRefused_AndTheLinkStillWorks()
    {
        using var browser = _factory.CreateBrowser();
        await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        var link = LinkIn(await MailToAsync("ada@acme.test"));

        var mistyped = await PostFormAsync(browser, link, new() { ["NewPassword"] = NewPassword, ["ConfirmPassword"] = NewPassword + "!" });
        var weak = await PostFormAsync(browser, link, new() { ["NewPassword"] = "short", ["ConfirmPassword"] = "short" });
        var done = await PostFormAsync(browser, link, new() { ["NewPassword"] = NewPassword, ["ConfirmPassword"] = NewPassword });

        Assert.Contains("The two passwords differ.", mistyped);
        Assert.Contains("at least 8 characters", weak);
        Assert.Contains("Your password is changed.", done);
    }

    [Fact]
    public async Task AReset_EndsALockout()
    {
        var page = new SignInPage(_factory.CreateBrowser(), Tenant);
        for (var i = 0; i < 10; i++)
        {
            await page.PostAsync("ada@acme.test", "wrong " + i);
        }

        Assert.True((await page.PostAsync("ada@acme.test", OldPassword)).Refused);
        using var browser = _factory.CreateBrowser();
        await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        await PostFormAsync(browser, LinkIn(await MailToAsync("ada@acme.test")), new() { ["NewPassword"] = NewPassword, ["ConfirmPassword"] = NewPassword });

        Assert.True((await page.PostAsync("ada@acme.test", NewPassword)).SignedIn);
    }

    [Fact]
    public async Task ALink_WorksOnlyAtItsTenant()
    {
        await _factory.CreateTenantAsync("other");
        using var browser = _factory.CreateBrowser();
        await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        var link = LinkIn(await MailToAsync("ada@acme.test"));

        Assert.Contains(ResetPasswordModel.InvalidLinkMessage, await browser.GetStringAsync(link.Replace("/t/acme/", "/t/other/")));
        Assert.Contains("autocomplete=\"new-password\"", await browser.GetStringAsync(link));
    }

    [Fact]
    public async Task AnAccount_GetsAtMostFiveLinksAnHour()
    {
        using var browser = _factory.CreateBrowser();
        for (var i = 0; i < 7; i++)
        {
            Assert.Contains(ForgotPasswordModel.SentMessage, await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" }));
        }

        await Eventually.TrueAsync(() => _smtp.Messages.Count >= 5);
        await Task.Delay(300);
        Assert.Equal(5, _smtp.Messages.Count);
        _factory.Time.Advance(TimeSpan.FromHours(1));
        await PostFormAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        await Eventually.TrueAsync(() => _smtp.Messages.Count == 6);
    }

    [Fact]
    public async Task WithoutAnSmtpServer_NoResetIsOffered()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync(Tenant);
        using var browser = factory.CreateBrowser();

        Assert.DoesNotContain("forgot-password", await browser.GetStringAsync("/t/acme/login"));
        Assert.Contains("cannot be reset by email here", await browser.GetStringAsync("/t/acme/forgot-password"));
    }

    private static Task<string> PostFormAsync(HttpClient browser, string path, Dictionary<string, string> fields, string? formPage = null) =>
        PageForms.PostAsync(browser, path, fields, formPage);

    private Task<MimeMessage> MailToAsync(string address) => _smtp.MailToAsync(address);

    private static string LinkIn(MimeMessage mail) => SmtpCapture.LinkIn(mail, "/reset-password");

    private static string Strip(string html) => PageForms.Strip(html);
}
