using System.Net;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Playwright;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A person in a real browser (Debian's Chromium, driven by Playwright) signs in through the sign-in page,
/// against the service listening on a loopback port. The client's redirect URI, https://app.example/cb,
/// is answered by the browser itself (Playwright routing), so the test sees where the browser ends.
/// </summary>
public sealed class BrowserSignInTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";

    private readonly KestrelIdentityServiceFactory _factory = new();
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        _factory.Start();
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        await _factory.CreateUserAsync("acme", Email, Password);

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
    }

    [Fact]
    public async Task Authorize_InABrowser_ShowsALabelledSignInForm_AndCorrectCredentialsEndAtTheRedirectUriWithARedeemableCode()
    {
        // Arrange
        using var http = _factory.CreateApi();
        var flow = new OidcFlow(http, "acme", "web");
        var authorizeUrl = new Uri(_factory.Address, flow.AuthorizeUrl()).ToString();
        var state = QueryHelpers.ParseQuery(new Uri(authorizeUrl).Query)["state"].ToString();
        var page = await NewPageAsync();

        // Act: the person opens the authorize URL and lands on the sign-in page.
        await page.GotoAsync(authorizeUrl);
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/t/acme/login");
        var email = page.GetByLabel("Email");
        var password = page.GetByLabel("Password");
        var emailVisible = await email.IsVisibleAsync();
        var passwordVisible = await password.IsVisibleAsync();
        var emailAutocomplete = await email.GetAttributeAsync("autocomplete");
        var passwordAutocomplete = await password.GetAttributeAsync("autocomplete");
        var passwordType = await password.GetAttributeAsync("type");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = "/tmp/browser-signin-form.png", FullPage = true });

        await email.FillAsync(Email);
        await password.FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync(url => url.StartsWith(OidcFlow.RedirectUri, StringComparison.Ordinal));

        // Assert: the form is usable by people and password managers, and the browser ends at the client with a code.
        Assert.True(emailVisible, "The Email field is not found by its visible label.");
        Assert.True(passwordVisible, "The Password field is not found by its visible label.");
        Assert.Equal("username", emailAutocomplete);
        Assert.Equal("current-password", passwordAutocomplete);
        Assert.Equal("password", passwordType);

        var redirect = new Uri(page.Url);
        var query = QueryHelpers.ParseQuery(redirect.Query);
        Assert.Equal(OidcFlow.RedirectUri, redirect.GetLeftPart(UriPartial.Path));
        Assert.Equal(state, query["state"].ToString());
        Assert.False(string.IsNullOrEmpty(query["code"].ToString()), page.Url);

        var tokens = await flow.RedeemAsync(query["code"].ToString());
        var body = await tokens.Content.ReadAsStringAsync();
        Assert.True(tokens.StatusCode == HttpStatusCode.OK, body);
        Assert.True(JsonDocument.Parse(body).RootElement.TryGetProperty("id_token", out _), body);
    }

    [Fact]
    public async Task SignInPage_InABrowser_WithAWrongPassword_ShowsTheRefusalAndStaysOnTheSignInPage()
    {
        // Arrange
        using var http = _factory.CreateApi();
        var authorizeUrl = new Uri(_factory.Address, new OidcFlow(http, "acme", "web").AuthorizeUrl()).ToString();
        var page = await NewPageAsync();
        await page.GotoAsync(authorizeUrl);
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/t/acme/login");

        // Act
        await page.GetByLabel("Email").FillAsync(Email);
        await page.GetByLabel("Password").FillAsync("not the password");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Sign in" }).ClickAsync();
        var alert = page.GetByRole(AriaRole.Alert);
        await alert.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible, Timeout = 15_000 });
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = "/tmp/browser-signin-refused.png", FullPage = true });

        // Assert
        Assert.Equal("Email and/or password invalid.", (await alert.InnerTextAsync()).Trim());
        Assert.Equal("/t/acme/login", new Uri(page.Url).AbsolutePath);
        Assert.Equal(Email, await page.GetByLabel("Email").InputValueAsync());
        Assert.Equal("", await page.GetByLabel("Password").InputValueAsync());
    }

    [Fact]
    public async Task Authorize_WhereASecondFactorIsRequired_SetsUpAnAuthenticatorAppFromTheQrCode()
    {
        // Arrange
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "required", factors = new[] { "totp" } } }, HttpStatusCode.OK);
        using var http = _factory.CreateApi();
        var flow = new OidcFlow(http, "acme", "web");
        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(_factory.Address, flow.AuthorizeUrl()).ToString());
        await page.GetByLabel("Email").FillAsync(Email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Sign in" }).ClickAsync();

        // Act: the second step's page shows a QR code the browser can draw, and the key as text; the app's code is typed.
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/t/acme/mfa");
        var qr = page.GetByAltText("QR code to add this account to an authenticator app");
        var qrWidth = await qr.EvaluateAsync<int>("img => img.naturalWidth");
        var secret = await page.Locator("#secret").InnerTextAsync();
        var code = page.GetByLabel("Code from the app");
        var codeAutocomplete = await code.GetAttributeAsync("autocomplete");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = "/tmp/browser-mfa-enroll.png", FullPage = true });
        await code.FillAsync(new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret)).ComputeTotp(DateTime.UtcNow));
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Confirm" }).ClickAsync();

        // The recovery codes are shown once, can be downloaded as a file, and the sign-in goes on.
        var shown = await page.Locator("#recovery-codes li").AllInnerTextsAsync();
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByText("Download them as a text file").ClickAsync());
        var file = await File.ReadAllTextAsync((await download.PathAsync())!);
        await page.GetByRole(AriaRole.Link, new PageGetByRoleOptions { Name = "I have kept them: continue" }).ClickAsync();
        await page.WaitForURLAsync(url => url.StartsWith(OidcFlow.RedirectUri, StringComparison.Ordinal));

        // Assert
        Assert.True(qrWidth > 100, $"The QR code is {qrWidth} pixels wide.");
        Assert.Equal("one-time-code", codeAutocomplete);
        Assert.Equal(10, shown.Count);
        Assert.Equal(string.Join("\n", shown) + "\n", file);
        Assert.Equal("recovery-codes.txt", download.SuggestedFilename);
        var tokens = await flow.RedeemAsync(QueryHelpers.ParseQuery(new Uri(page.Url).Query)["code"].ToString());
        var idToken = JsonDocument.Parse(await tokens.Content.ReadAsStringAsync()).RootElement.GetProperty("id_token").GetString()!;
        var claims = JsonDocument.Parse(Base64UrlTextEncoder.Decode(idToken.Split('.')[1])).RootElement;
        Assert.Contains("mfa", claims.GetProperty("amr").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public async Task TheSignInPage_RunsOnlyItsOwnScripts_AndNoOtherSiteShowsItInAFrame()
    {
        var login = new Uri(_factory.Address, "/t/acme/login").ToString();
        var page = await NewPageAsync();
        var answer = await page.GotoAsync(login);
        var policy = (await answer!.AllHeadersAsync())["content-security-policy"];
        Assert.Contains("frame-ancestors 'none'", policy);
        Assert.Contains("script-src 'nonce-", policy);

        // A script put into the page (as an injection would) does not run; the page's own scripts carry the nonce.
        try
        {
            await page.AddScriptTagAsync(new PageAddScriptTagOptions { Content = "window.injected = true;" });
        }
        catch (PlaywrightException)
        {
            // Refused by the policy: what is asserted below.
        }

        Assert.False(await page.EvaluateAsync<bool>("() => window.injected === true"), "A script without the response's nonce ran.");

        // Another site framing the sign-in page (clickjacking) shows an empty frame, not the form.
        await page.Context.RouteAsync("https://app.example/framing", route => route.FulfillAsync(new RouteFulfillOptions
        {
            Status = 200,
            ContentType = "text/html",
            Body = $"<!DOCTYPE html><title>framing</title><iframe id=\"f\" src=\"{login}\" width=\"600\" height=\"600\"></iframe>",
        }));
        await page.GotoAsync("https://app.example/framing");
        await page.WaitForLoadStateAsync(LoadState.Load);
        var frame = page.Frames.Single(f => f != page.MainFrame);
        Assert.Equal(0, await frame.Locator("input[type=password]").CountAsync());
    }

    [Fact]
    public async Task TheTenantsLogo_LoadsUnderThePagesPolicy_WhereAnImageFromElsewhereDoesNot()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { branding = new { logoUrl = "https://cdn.acme.example/logo.png" } }, HttpStatusCode.OK);
        var page = await NewPageAsync();
        var png = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==");
        foreach (var host in new[] { "https://cdn.acme.example/**", "https://tracker.example/**" })
        {
            await page.Context.RouteAsync(host, route => route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "image/png", BodyBytes = png }));
        }

        await page.GotoAsync(new Uri(_factory.Address, "/t/acme/login").ToString());
        await page.WaitForLoadStateAsync(LoadState.Load);
        var logoWidth = await page.EvaluateAsync<int>("() => document.getElementById('logo').naturalWidth");
        var otherWidth = await page.EvaluateAsync<int>("""
            () => new Promise(done => { const i = new Image(); i.onload = () => done(i.naturalWidth); i.onerror = () => done(0); i.src = 'https://tracker.example/pixel.png'; })
            """);

        Assert.Equal(1, logoWidth);
        Assert.Equal(0, otherWidth);
    }

    private async Task<IPage> NewPageAsync() => await (await Chromium.NewClientContextAsync(_browser!)).NewPageAsync();
}
