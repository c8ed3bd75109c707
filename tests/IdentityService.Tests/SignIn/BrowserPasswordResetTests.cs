using System.Text.RegularExpressions;
using IdentityService.Tests.Infrastructure;
using Microsoft.Playwright;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A person resets a forgotten password in a real browser (Debian's Chromium through Playwright): asks on the
/// page, follows the link mailed to a real SMTP server on this machine, and sees the strength of the new
/// password live while typing it.
/// </summary>
public sealed partial class BrowserPasswordResetTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private readonly KestrelIdentityServiceFactory _factory = new();
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        foreach (var (key, value) in _smtp.Settings)
        {
            _factory.Settings[key] = value;
        }

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
        var link = Link().Match(_smtp.Messages.Single().TextBody ?? "").Value;

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

    [GeneratedRegex("http://\\S+/reset-password\\?token=[A-Za-z0-9_-]+")]
    private static partial Regex Link();
}
