using System.Net;
using IdentityService.SignIn.Pages;
using IdentityService.SignIn.Pages.Account;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A person verifies an address an admin entered unverified, from the security page, through a link mailed to a
/// real SMTP server on this machine: the link's button verifies it, for 24 hours, while the address is the same.
/// </summary>
public sealed class EmailVerificationTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;
    private string _userId = "";

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);

        await _factory.CreateTenantAsync("acme");
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { emailVerified = false });
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheMailedLinksButton_VerifiesTheAddress()
    {
        using var browser = await SignedInAsync();
        Assert.Contains("is not verified yet", await browser.GetStringAsync("/t/acme/account/security"));
        var link = await AskAsync(browser);
        Assert.StartsWith("http://localhost/t/acme/verify-email?token=", link);

        // Opened anywhere, no sign-in needed; opening it changes nothing, the button does.
        using var elsewhere = _factory.CreateBrowser();
        Assert.Contains("<strong id=\"email\">ada@acme.test</strong>", await elsewhere.GetStringAsync(link));
        Assert.False(await VerifiedAsync());
        Assert.Contains("Your email address ada@acme.test is verified.", await PageForms.PostAsync(elsewhere, link, []));
        Assert.True(await VerifiedAsync());
        Assert.DoesNotContain("is not verified yet", await browser.GetStringAsync("/t/acme/account/security"));

        var events = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.email_verified", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal($"user:{_userId}@acme", Assert.Single(events)!["actor"]!.GetValue<string>());
    }

    [Fact]
    public async Task ALink_EndsAfter24Hours_WhenTheAddressChanges_AndAtAnotherTenant()
    {
        await _factory.CreateTenantAsync("other");
        using var browser = await SignedInAsync();
        var link = await AskAsync(browser);

        Assert.Contains(VerifyEmailModel.InvalidLinkMessage, await browser.GetStringAsync(link.Replace("/t/acme/", "/t/other/")));
        Assert.Contains(VerifyEmailModel.InvalidLinkMessage, await browser.GetStringAsync(link + "x"));
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { email = "ada.lovelace@acme.test" }, HttpStatusCode.OK);
        Assert.Contains(VerifyEmailModel.InvalidLinkMessage, await PageForms.PostAsync(browser, link, [], "/t/acme/login"));

        var second = await AskAsync(await SignedInAsync("ada.lovelace@acme.test"), "ada.lovelace@acme.test");
        _factory.Time.Advance(TimeSpan.FromHours(23));
        Assert.Contains("Verify the address", await browser.GetStringAsync(second));
        _factory.Time.Advance(TimeSpan.FromHours(1));
        Assert.Contains(VerifyEmailModel.InvalidLinkMessage, await browser.GetStringAsync(second));
    }

    [Fact]
    public async Task AVerifiedAddress_IsNotOfferedALink()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { emailVerified = true }, HttpStatusCode.OK);
        using var browser = await SignedInAsync();

        Assert.DoesNotContain("verify-email", await browser.GetStringAsync("/t/acme/account/security"));
        await PageForms.PostAsync(browser, "/t/acme/account/security?handler=verifyemail", [], "/t/acme/account/security");
        await Task.Delay(300);
        Assert.Empty(_smtp.Messages);

        // A new address from an admin is not verified until someone says so.
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { email = "ada.lovelace@acme.test" }, HttpStatusCode.OK);
        Assert.False(await VerifiedAsync());
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { email = "ada@acme.test", emailVerified = true }, HttpStatusCode.OK);
        Assert.True(await VerifiedAsync());
    }

    private async Task<HttpClient> SignedInAsync(string email = "ada@acme.test")
    {
        var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync(email, Password)).SignedIn);
        return browser;
    }

    /// <summary>Asks for a link on the security page and returns the one mailed.</summary>
    private async Task<string> AskAsync(HttpClient browser, string email = "ada@acme.test")
    {
        var answer = await PageForms.PostAsync(browser, "/t/acme/account/security?handler=verifyemail", [], "/t/acme/account/security");
        Assert.Contains(SecurityModel.VerificationSentMessage, answer);
        var mail = await _smtp.MailToAsync(email);
        Assert.Equal("Verify your email address for ACME", mail.Subject);
        return System.Text.RegularExpressions.Regex.Match(mail.TextBody ?? "", "http://\\S+/verify-email\\?token=\\S+").Value;
    }

    private async Task<bool> VerifiedAsync() =>
        (await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}", expected: HttpStatusCode.OK))["emailVerified"]!.GetValue<bool>();
}
