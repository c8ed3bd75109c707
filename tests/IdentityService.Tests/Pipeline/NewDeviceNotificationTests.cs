using System.Net;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Pipeline;

/// <summary>
/// Where the tenant asks it (<c>notifications.newDevice</c>), an account's owner is mailed (a real SMTP server on
/// loopback) when its password is used from a device it never signed in from; not on its first sign-in, not from a
/// device it knows, not for a wrong password.
/// </summary>
public sealed class NewDeviceNotificationTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { emailVerified = true });
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { notifications = new { newDevice = true } }, HttpStatusCode.OK);
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ThePasswordUsedFromANewDevice_MailsTheOwner_AndOnlyThen()
    {
        using var laptop = _factory.CreateBrowser();
        var onLaptop = new SignInPage(laptop, "acme");
        Assert.True((await onLaptop.PostAsync("ada@acme.test", Password)).SignedIn);
        Assert.True((await new SignInPage(laptop, "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", "not the password")).Refused);
        await Task.Delay(300);
        Assert.Empty(_smtp.Messages);

        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync(
            "ada@acme.test", Password, "198.51.100.7", new Dictionary<string, string> { ["User-Agent"] = Chrome })).SignedIn);

        var mail = await _smtp.MailToAsync("ada@acme.test");
        Assert.Equal("New sign-in to your ACME account", mail.Subject);
        Assert.Contains("From: 198.51.100.7", mail.TextBody);
        Assert.Contains("Browser: Chrome on Windows", mail.TextBody);
        Assert.Contains("http://localhost/t/acme/forgot-password", mail.TextBody);
        var trace = (await _factory.SignInEventsAsync("acme")).Last().Trace!;
        Assert.Contains("owner mailed", trace);
    }

    [Fact]
    public async Task OffByDefault_AndNeverToAnUnverifiedAddress()
    {
        await _factory.CreateUserAsync("acme", "grace@acme.test", Password, new { emailVerified = false });
        foreach (var email in new[] { "grace@acme.test", "grace@acme.test" })
        {
            Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync(email, Password)).SignedIn);
        }

        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { notifications = new { newDevice = false } }, HttpStatusCode.OK);
        foreach (var _ in new[] { 1, 2 })
        {
            Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        }

        await Task.Delay(300);
        Assert.Empty(_smtp.Messages);
    }
}
