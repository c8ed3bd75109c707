using System.Net;
using IdentityService.SignIn.Pages.Account;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A signed-in person moves their account to a new email address, with their password, through a link mailed to
/// the new address (a real SMTP server on this machine): nothing changes until the link's button is pressed, the
/// old address is then told, and an address that has an account is never named as such.
/// </summary>
public sealed class EmailChangeTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string Page = "/t/acme/account/email";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;
    private string _userId = "";

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { emailVerified = true });
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheLinksButton_MovesTheAccount_AndTellsTheOldAddress()
    {
        using var browser = await SignedInAsync();
        Assert.Contains("id=\"change-email\"", await browser.GetStringAsync("/t/acme/account/profile"));

        var sent = await RequestAsync(browser, "ada.lovelace@acme.test");
        Assert.Contains("We sent a link to <strong>ada.lovelace@acme.test</strong>", sent);
        var mail = await _smtp.MailToAsync("ada.lovelace@acme.test");
        Assert.Equal("Confirm your new email address for ACME", mail.Subject);
        var link = SmtpCapture.LinkIn(mail, "/account/email/confirm");

        // Opened anywhere, no sign-in needed; opening it changes nothing, the button does.
        using var elsewhere = _factory.CreateBrowser();
        Assert.Contains("<strong id=\"new-email\">ada.lovelace@acme.test</strong>", await elsewhere.GetStringAsync(link));
        Assert.Equal("ada@acme.test", (await UserAsync())["email"]!.GetValue<string>());
        var done = await PageForms.PostAsync(elsewhere, link, []);
        Assert.Contains("Your account's email address is now <strong>ada.lovelace@acme.test</strong>", done);

        var user = await UserAsync();
        Assert.Equal("ada.lovelace@acme.test", user["email"]!.GetValue<string>());
        Assert.True(user["emailVerified"]!.GetValue<bool>());
        var told = await _smtp.MailToAsync("ada@acme.test");
        Assert.Equal("Your ACME email address was changed", told.Subject);
        Assert.Contains("ada.lovelace@acme.test", told.TextBody);

        // The new address signs in, the old one no longer does; the link works once.
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada.lovelace@acme.test", Password)).SignedIn);
        Assert.False((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        Assert.Contains(ConfirmEmailModel.InvalidLinkMessage, await elsewhere.GetStringAsync(link));

        var updated = Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.updated", expected: HttpStatusCode.OK))["items"]!.AsArray())!;
        Assert.Equal($"user:{_userId}@acme", updated["actor"]!.GetValue<string>());
        Assert.Equal(["email", "emailVerified"], updated["details"]!["fields"]!.AsArray().Select(f => f!.GetValue<string>()));
    }

    [Fact]
    public async Task AResetLinkMailedToTheOldAddress_NoLongerWorks_OnceTheAccountMoved()
    {
        // Whoever reads the old address asks for a reset link before the owner moves the account.
        using var other = _factory.CreateBrowser();
        await PageForms.PostAsync(other, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        var reset = SmtpCapture.LinkIn(await _smtp.MailToAsync("ada@acme.test"), "/reset-password");
        _smtp.Messages.Clear();

        using var browser = await SignedInAsync();
        await RequestAsync(browser, "ada.lovelace@acme.test");
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("ada.lovelace@acme.test"), "/account/email/confirm");
        Assert.Contains("<strong>ada.lovelace@acme.test</strong>", await PageForms.PostAsync(_factory.CreateBrowser(), link, []));

        Assert.Contains(IdentityService.SignIn.Pages.ResetPasswordModel.InvalidLinkMessage, await other.GetStringAsync(reset));
    }

    [Fact]
    public async Task AWrongPassword_IsRefused_AndCountsTowardsTheLockout()
    {
        using var browser = await SignedInAsync();

        var wrong = await RequestAsync(browser, "ada.lovelace@acme.test", "not the password");

        Assert.Contains("Your current password is not right.", wrong);
        var failed = Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.email_change_requested", expected: HttpStatusCode.OK))["items"]!.AsArray())!;
        Assert.Equal(("failed", "wrong_password"), (failed["outcome"]!.GetValue<string>(), failed["details"]!["reason"]!.GetValue<string>()));
        for (var i = 0; i < 9; i++)
        {
            await RequestAsync(browser, "ada.lovelace@acme.test", "not the password");
        }

        Assert.False((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        await Task.Delay(300);
        Assert.DoesNotContain(_smtp.Messages, m => m.To.Mailboxes.Any(b => b.Address == "ada.lovelace@acme.test"));
    }

    [Fact]
    public async Task AnAddressWithAnAccount_GetsTheSameAnswer_AndItsOwnerIsTold()
    {
        await _factory.CreateUserAsync("acme", "grace@acme.test", Password);
        using var browser = await SignedInAsync();

        var answer = await RequestAsync(browser, "grace@acme.test");

        Assert.Contains("We sent a link to <strong>grace@acme.test</strong>", answer);
        var mail = await _smtp.MailToAsync("grace@acme.test");
        Assert.Equal("Your ACME account", mail.Subject);
        Assert.DoesNotContain("/account/email/confirm", mail.TextBody);
        Assert.Equal("ada@acme.test", (await UserAsync())["email"]!.GetValue<string>());
    }

    [Fact]
    public async Task ALink_EndsAfter24Hours_AtAnotherTenant_AndWhenTheAddressIsTakenMeanwhile()
    {
        await _factory.CreateTenantAsync("other");
        using var browser = await SignedInAsync();
        await RequestAsync(browser, "ada.lovelace@acme.test");
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("ada.lovelace@acme.test"), "/account/email/confirm");

        Assert.Contains(ConfirmEmailModel.InvalidLinkMessage, await browser.GetStringAsync(link.Replace("/t/acme/", "/t/other/")));
        Assert.Contains(ConfirmEmailModel.InvalidLinkMessage, await browser.GetStringAsync(link + "x"));
        await _factory.CreateUserAsync("acme", "ada.lovelace@acme.test", Password);
        _factory.Time.Advance(TimeSpan.FromHours(23));
        Assert.Contains("Use this address", await browser.GetStringAsync(link));

        // Taken since the link was sent (by an admin here): the button changes nothing.
        Assert.Contains("is used by another account now", await PageForms.PostAsync(browser, link, []));
        _factory.Time.Advance(TimeSpan.FromHours(1));
        Assert.Contains(ConfirmEmailModel.InvalidLinkMessage, await browser.GetStringAsync(link));
    }

    [Fact]
    public async Task APendingLink_Ends_WhenThePasswordChanges_TheOtherSessionsEnd_OrTheAccountIsDisabled()
    {
        // Whoever took a session (and knows the password) asks to move the account to their address; the owner then
        // takes the account back in one of the three ways: the link they hold must stop working.
        using var browser = await SignedInAsync();
        var afterPasswordChange = await LinkAsync(browser, "taker1@evil.test");
        await PageForms.PostAsync(browser, "/t/acme/account/password", new()
        {
            ["CurrentPassword"] = Password,
            ["NewPassword"] = "a whole new passphrase here",
            ["ConfirmPassword"] = "a whole new passphrase here",
        });
        var afterSignOut = await LinkAsync(browser, "taker2@evil.test", "a whole new passphrase here");
        Assert.Contains(SecurityModel.SignedOutElsewhereMessage, await PageForms.PostAsync(browser, "/t/acme/account/security?handler=signoutothers", []));
        var afterDisable = await LinkAsync(browser, "taker3@evil.test", "a whole new passphrase here");
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { disabled = true }, HttpStatusCode.OK);
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { disabled = false }, HttpStatusCode.OK);

        using var taker = _factory.CreateBrowser();
        foreach (var link in new[] { afterPasswordChange, afterSignOut, afterDisable })
        {
            Assert.Contains(ConfirmEmailModel.InvalidLinkMessage, await taker.GetStringAsync(link));
            Assert.Contains(ConfirmEmailModel.InvalidLinkMessage, await PageForms.PostAsync(taker, link, [], formPage: "/t/acme/login"));
        }

        Assert.Equal("ada@acme.test", (await UserAsync())["email"]!.GetValue<string>());
    }

    [Fact]
    public async Task ALink_DoesNothing_WhileTheAccountIsDisabled()
    {
        using var browser = await SignedInAsync();
        var link = await LinkAsync(browser, "ada.lovelace@acme.test");
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            // Disabled without its sessions ending (as a database restore or a direct edit could leave it).
            var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<IdentityService.Users.AppUser>>();
            var user = (await users.FindByIdAsync(_userId))!;
            user.Disabled = true;
            await users.UpdateAsync(user);
        }

        Assert.Contains(ConfirmEmailModel.InvalidLinkMessage, await _factory.CreateBrowser().GetStringAsync(link));
        Assert.Equal("ada@acme.test", (await UserAsync())["email"]!.GetValue<string>());
    }

    [Fact]
    public async Task BadAddresses_AreNamed_AndThePageNeedsASignIn()
    {
        using var anonymous = _factory.CreateBrowser();
        var redirect = await anonymous.GetAsync(Page);
        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        Assert.Contains("/t/acme/login", OidcFlow.Location(redirect).ToString());

        using var browser = await SignedInAsync();
        Assert.Contains("Enter an email address, such as name@example.com.", await RequestAsync(browser, "not an address"));
        Assert.Contains("This is your address already.", await RequestAsync(browser, "ADA@acme.test"));
        Assert.Contains("Enter an email address", await RequestAsync(browser, new string('a', 250) + "@acme.test"));
        await Task.Delay(300);
        Assert.Empty(_smtp.Messages);
    }

    [Fact]
    public async Task FiveLinksAnHour_AtMost()
    {
        using var browser = await SignedInAsync();
        for (var i = 0; i < 5; i++)
        {
            Assert.Contains("We sent a link", await RequestAsync(browser, $"new{i}@acme.test"));
        }

        Assert.Contains("Too many links were sent", await RequestAsync(browser, "new5@acme.test"));
        _factory.Time.Advance(TimeSpan.FromHours(1));
        Assert.Contains("We sent a link", await RequestAsync(browser, "new6@acme.test"));
    }

    private async Task<HttpClient> SignedInAsync()
    {
        var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        return browser;
    }

    /// <summary>Asks for the account to move to an address, and reads the link mailed there.</summary>
    private async Task<string> LinkAsync(HttpClient browser, string email, string password = Password)
    {
        Assert.Contains("We sent a link", await RequestAsync(browser, email, password));
        return SmtpCapture.LinkIn(await _smtp.MailToAsync(email), "/account/email/confirm");
    }

    private static Task<string> RequestAsync(HttpClient browser, string email, string password = Password) =>
        PageForms.PostAsync(browser, Page, new() { ["NewEmail"] = email, ["CurrentPassword"] = password });

    private Task<System.Text.Json.Nodes.JsonObject> UserAsync() =>
        _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}", expected: HttpStatusCode.OK);
}
