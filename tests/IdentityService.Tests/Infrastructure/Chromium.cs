using Microsoft.Playwright;

namespace IdentityService.Tests.Infrastructure;

/// <summary>Debian's Chromium (package <c>chromium</c>), headless, driven by Playwright: no browser download.</summary>
public static class Chromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) =>
        playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });

    /// <summary>A fresh browser context (no cookies) whose visits to the client's site (<c>https://app.example</c>) are answered locally.</summary>
    public static async Task<IBrowserContext> NewClientContextAsync(IBrowser browser)
    {
        var context = await browser.NewContextAsync();
        context.SetDefaultTimeout(15_000);
        await context.RouteAsync("https://app.example/**", route => route.FulfillAsync(new RouteFulfillOptions
        {
            Status = 200,
            ContentType = "text/html",
            Body = "<!DOCTYPE html><title>app.example</title><p>Signed in.</p>",
        }));
        return context;
    }
}
