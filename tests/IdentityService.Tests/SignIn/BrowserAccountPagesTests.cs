using IdentityService.Tests.Infrastructure;
using Microsoft.Playwright;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// The pages where a person chooses a password, in a real browser (Debian's Chromium through Playwright), with a
/// real SMTP server on this machine: resetting a forgotten password through the mailed link, signing up through the
/// mailed confirmation, and changing the password once signed in; each shows the new password's strength live.
/// </summary>
public sealed class BrowserAccountPagesTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private readonly KestrelIdentityServiceFactory _factory = new();
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        _factory.SendMailTo(_smtp);

        _factory.Start();
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", "correct horse battery staple");
        _playwright = await Playwright.CreateAsync();
        _browser = await Chromium.LaunchAsync(_playwright);
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
        await _factory.DisposeAsync();
        await _smtp.DisposeAsync();
    }

    [Fact]
    public async Task ForgotPassword_ThroughTheMailedLink_WithALiveStrengthMeter()
    {
        var context = await _browser!.NewContextAsync();
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();

        await page.GotoAsync(new Uri(_factory.Address, "/t/acme/login").ToString());
        await page.GetByRole(AriaRole.Link, new PageGetByRoleOptions { Name = "Forgot your password?" }).ClickAsync();
        await page.GetByLabel("Email").FillAsync("ada@acme.test");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Send the link" }).ClickAsync();
        await page.GetByRole(AriaRole.Status).WaitForAsync();
        await Eventually.TrueAsync(() => !_smtp.Messages.IsEmpty, "No mail came.");
        var link = SmtpCapture.LinkIn(_smtp.Messages.Single(), "/reset-password");

        await page.GotoAsync(link);
        var password = page.GetByLabel("New password", new PageGetByLabelOptions { Exact = true });
        var meter = page.Locator("#strength");
        var autocomplete = await password.GetAttributeAsync("autocomplete");
        await password.PressSequentiallyAsync("password");
        await Assertions.Expect(meter).ToContainTextAsync("Not yet");
        var weak = await meter.GetAttributeAsync("data-score");
        await password.FillAsync("");
        await password.PressSequentiallyAsync("plum orbit cactus 1987 lantern");
        await Assertions.Expect(meter).ToContainTextAsync("Good enough");
        var strong = await meter.GetAttributeAsync("data-score");
        await page.GetByLabel("New password, again").FillAsync("plum orbit cactus 1987 lantern");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Set the password" }).ClickAsync();
        await page.GetByRole(AriaRole.Status).WaitForAsync();
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = "/tmp/browser-password-reset.png", FullPage = true });

        Assert.Equal("0", weak);
        Assert.True(int.Parse(strong!) >= 2, $"score {strong}");
        Assert.Contains("Your password is changed.", await page.GetByRole(AriaRole.Status).TextContentAsync());
        Assert.Equal("new-password", autocomplete);
    }

    [Fact]
    public async Task SignUp_ThroughTheMailedConfirmation_ThenSignIn_AndChangeThePassword()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { enabled = true } }, System.Net.HttpStatusCode.OK);
        var context = await _browser!.NewContextAsync();
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();

        await page.GotoAsync(new Uri(_factory.Address, "/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fpassword").ToString());
        await page.GetByRole(AriaRole.Link, new PageGetByRoleOptions { Name = "Create an account" }).ClickAsync();
        await page.GetByLabel("Email").FillAsync("grace@acme.test");
        var password = page.GetByLabel("Password", new PageGetByLabelOptions { Exact = true });
        await password.PressSequentiallyAsync("grace1906");
        await Assertions.Expect(page.Locator("#strength")).ToContainTextAsync("Not yet");
        await password.FillAsync("");
        await password.PressSequentiallyAsync("plum orbit cactus 1987 lantern");
        await Assertions.Expect(page.Locator("#strength")).ToContainTextAsync("Good enough");
        await page.GetByLabel("Password, again").FillAsync("plum orbit cactus 1987 lantern");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Create the account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Check your email");

        await page.GotoAsync(SmtpCapture.LinkIn(await _smtp.MailToAsync("grace@acme.test"), "/signup/confirm"));
        await page.GetByLabel("The password you chose").FillAsync("plum orbit cactus 1987 lantern");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Confirm and create the account" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your account is ready.");
        await page.GetByRole(AriaRole.Link, new PageGetByRoleOptions { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.GetByLabel("Email")).ToHaveValueAsync("grace@acme.test");
        await page.GetByLabel("Password").FillAsync("plum orbit cactus 1987 lantern");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Sign in" }).ClickAsync();

        // Signed in, where the sign-up began: the page to change the password.
        await Assertions.Expect(page.GetByRole(AriaRole.Heading)).ToHaveTextAsync("Change your password");
        await page.GetByLabel("Current password").FillAsync("plum orbit cactus 1987 lantern");
        await page.GetByLabel("New password", new PageGetByLabelOptions { Exact = true }).PressSequentiallyAsync("violet harbor 2031 comet ridge");
        await Assertions.Expect(page.Locator("#strength")).ToContainTextAsync("Good enough");
        await page.GetByLabel("New password, again").FillAsync("violet harbor 2031 comet ridge");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Change the password" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your password is changed.");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = "/tmp/browser-password-change.png", FullPage = true });
        await page.GotoAsync(new Uri(_factory.Address, "/t/acme/account/security").ToString());
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new PageGetByRoleOptions { Level = 1 })).ToHaveTextAsync("Sign-in security");
    }
}
