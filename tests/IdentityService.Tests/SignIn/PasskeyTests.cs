using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Data;
using IdentityService.SignIn.Pages;
using IdentityService.SignIn.Pages.Account;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// Passkeys as a second factor, in Debian's Chromium with its virtual WebAuthn authenticator (a real browser making
/// and using a real credential, through the DevTools protocol): added on the security page, asked at the next
/// sign-in after the password, refused when forged, removed. The browser reaches the service as
/// <c>http://localhost</c>: WebAuthn needs a domain for its relying party, not an IP address.
/// </summary>
public sealed class PasskeyTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";

    private readonly KestrelIdentityServiceFactory _factory = new();
    private IPlaywright? _playwright;
    private IBrowser? _browser;
    private string _origin = "";

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        _origin = $"http://localhost:{_factory.Start().Port}";
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        await _factory.CreateUserAsync("acme", Email, Password);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "optional", factors = new[] { "totp", "passkey" } } }, HttpStatusCode.OK);

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
    public async Task APasskeyAddedOnTheSecurityPage_IsAskedAfterThePassword_AndEndsAtTheClient()
    {
        // Arrange: signed in with the password alone (optional policy, nothing set up yet), on the security page.
        var (page, authenticator) = await NewPageWithAuthenticatorAsync();
        await page.GotoAsync($"{_origin}/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fsecurity");
        await PasswordAsync(page);
        await page.GetByLabel("Name for the new passkey").WaitForAsync();
        var afterPassword = new Uri(page.Url).AbsolutePath;

        // Act: the person names a passkey and adds it; the browser's authenticator makes it.
        await page.GetByLabel("Name for the new passkey").FillAsync("Work laptop");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Add a passkey" }).ClickAsync();
        await page.GetByText(SecurityModel.PasskeyAddedMessage).WaitForAsync();
        var listed = await page.Locator("#passkeys .passkey-name").AllInnerTextsAsync();
        var codes = await page.Locator("#recovery-codes li").CountAsync();
        var stored = (await authenticator.Session.SendAsync("WebAuthn.getCredentials", new() { ["authenticatorId"] = authenticator.Id }))!.Value.GetProperty("credentials");

        // The next sign-in, through an authorization request: the password, then the passkey.
        await page.Context.ClearCookiesAsync();
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(_origin) };
        var flow = new OidcFlow(http, "acme", "web");
        await page.GotoAsync(_origin + flow.AuthorizeUrl());
        await PasswordAsync(page);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Use a passkey" }).WaitForAsync();
        var secondStep = new Uri(page.Url).AbsolutePath;
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = "/tmp/browser-mfa-passkey.png", FullPage = true });
        // The redirect to the client is read from the request itself: with the DevTools session attached, Chromium's
        // first load of the client's site can miss the context's routing (it then loads it again).
        var atClient = await page.RunAndWaitForRequestAsync(
            () => page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Use a passkey" }).ClickAsync(),
            request => request.Url.StartsWith(OidcFlow.RedirectUri, StringComparison.Ordinal));

        // Assert
        Assert.Equal("/t/acme/account/security", afterPassword);
        Assert.Equal("/t/acme/mfa", secondStep);
        Assert.Equal(["Work laptop"], listed);
        Assert.Equal(10, codes);
        var credential = Assert.Single(stored.EnumerateArray());
        Assert.Equal("localhost", credential.GetProperty("rpId").GetString());
        var tokens = await flow.RedeemAsync(QueryHelpers.ParseQuery(new Uri(atClient.Url).Query)["code"].ToString());
        var idToken = JsonDocument.Parse(await tokens.Content.ReadAsStringAsync()).RootElement.GetProperty("id_token").GetString()!;
        var claims = JsonDocument.Parse(Base64UrlTextEncoder.Decode(idToken.Split('.')[1])).RootElement;
        Assert.Equal(["pwd", "swk", "mfa"], claims.GetProperty("amr").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public async Task AForgedAnswer_IsRefused_AndRemovingThePasskey_StopsTheSecondStep()
    {
        var (page, _) = await NewPageWithAuthenticatorAsync();
        await page.GotoAsync($"{_origin}/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fsecurity");
        await PasswordAsync(page);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Add a passkey" }).ClickAsync();
        await page.GetByText(SecurityModel.PasskeyAddedMessage).WaitForAsync();

        // Another client that knows the password but not the passkey: answers it cannot sign are refused, never a 500.
        var cookies = new CookieContainer();
        using var other = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies }) { BaseAddress = new Uri(_origin) };
        var answer = await new SignInPage(other, "acme").PostAsync(Email, Password, query: "?ReturnUrl=%2Ft%2Facme%2Fafter");
        Assert.StartsWith("/t/acme/mfa", answer.Location!.OriginalString);
        var mfa = await other.GetStringAsync("/t/acme/mfa");
        Assert.Contains("data-passkey=\"get\"", mfa);
        var state = WebUtility.HtmlDecode(OidcFlow.Hidden(mfa, "State"));
        foreach (var (credential, ceremony) in new[] { ("{}", state), ("not json", state), ("""{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}""", state), ("{}", "forged") })
        {
            var form = await other.GetStringAsync("/t/acme/mfa");
            var posted = await other.PostAsync("/t/acme/mfa", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Factor"] = "passkey",
                ["Credential"] = credential,
                ["State"] = ceremony,
                ["ReturnUrl"] = "/t/acme/after",
                ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(form),
            }));
            Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
            Assert.Contains(MfaModel.PasskeyFailedMessage, WebUtility.HtmlDecode(await posted.Content.ReadAsStringAsync()));
        }

        // Removed on the security page, from a sign-in that used it (a password alone removes no second factor):
        // the next sign-in asks the password only.
        await page.Context.ClearCookiesAsync();
        await page.GotoAsync($"{_origin}/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fsecurity");
        await PasswordAsync(page);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Use a passkey" }).ClickAsync();
        await page.WaitForURLAsync($"{_origin}/t/acme/account/security");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Remove the passkey Passkey" }).ClickAsync();
        await page.GetByText(SecurityModel.PasskeyRemovedMessage).WaitForAsync();
        Assert.Equal("No passkey is set up.", await page.Locator("#passkeys-status").InnerTextAsync());
        var next = await new SignInPage(other, "acme").PostAsync(Email, Password, query: "?ReturnUrl=%2Ft%2Facme%2Fafter");
        Assert.Equal("/t/acme/after", next.Location!.OriginalString);
    }

    [Fact]
    public async Task WhereTheTenantLetsIt_APasskeyAlone_SignsIn_AsTwoFactors()
    {
        // Arrange: a passkey added on the security page; then the tenant lets passkeys sign in alone.
        var (page, _) = await NewPageWithAuthenticatorAsync();
        await page.GotoAsync($"{_origin}/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fsecurity");
        Assert.Equal(0, await page.Locator("#signin-passkey").CountAsync());
        await PasswordAsync(page);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Add a passkey" }).ClickAsync();
        await page.GetByText(SecurityModel.PasskeyAddedMessage).WaitForAsync();
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "required", passkeySignIn = true } }, HttpStatusCode.OK);

        // Act: signed out, an app's authorization request; on the sign-in page, the passkey alone.
        await page.Context.ClearCookiesAsync();
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(_origin) };
        var flow = new OidcFlow(http, "acme", "web");
        await page.GotoAsync(_origin + flow.AuthorizeUrl());
        var atClient = await page.RunAndWaitForRequestAsync(
            () => page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Sign in with a passkey" }).ClickAsync(),
            request => request.Url.StartsWith(OidcFlow.RedirectUri, StringComparison.Ordinal));

        // Assert: no password and no second step asked (mode required), and the app is told how.
        var tokens = await flow.RedeemAsync(QueryHelpers.ParseQuery(new Uri(atClient.Url).Query)["code"].ToString());
        var idToken = JsonDocument.Parse(await tokens.Content.ReadAsStringAsync()).RootElement.GetProperty("id_token").GetString()!;
        var claims = JsonDocument.Parse(Base64UrlTextEncoder.Decode(idToken.Split('.')[1])).RootElement;
        Assert.Equal(["swk", "mfa"], claims.GetProperty("amr").EnumerateArray().Select(a => a.GetString()));
        var signedIn = (await _factory.SignInEventsAsync("acme")).Last();
        Assert.Equal("signin.succeeded", signedIn.Type);
        Assert.Contains(LoginModel.PasskeyStep, signedIn.Trace);

        // A forged answer is refused with the page's message, never a 500; so is one once the tenant turns it off.
        using var other = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(_origin) };
        var login = await other.GetStringAsync("/t/acme/login");
        var forged = await other.PostAsync("/t/acme/login?handler=passkey", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Credential"] = "{}",
            ["State"] = WebUtility.HtmlDecode(OidcFlow.Hidden(login, "State")),
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(login),
        }));
        Assert.Equal(HttpStatusCode.OK, forged.StatusCode);
        Assert.Contains(LoginModel.PasskeyFailedMessage, WebUtility.HtmlDecode(await forged.Content.ReadAsStringAsync()));
        Assert.Equal("failed", (await _factory.SignInEventsAsync("acme")).Last().Outcome);
    }

    [Fact]
    public async Task APasskeyAloneAnswer_SignsInOnce_EvenFromAnAuthenticatorThatCountsNoSignatures()
    {
        // Arrange: a passkey, allowed alone; the browser's answer at sign-in is recorded as it goes by.
        var (page, _) = await NewPageWithAuthenticatorAsync();
        await AddPasskeyAsync(page, "acme", Email);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "required", passkeySignIn = true } }, HttpStatusCode.OK);
        await page.Context.ClearCookiesAsync();
        string? answer = null;
        await page.RouteAsync(url => url.Contains("handler=passkey", StringComparison.OrdinalIgnoreCase), async route =>
        {
            answer = route.Request.PostData;
            await route.ContinueAsync();
        });
        await page.GotoAsync($"{_origin}/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fsecurity");
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Sign in with a passkey" }).ClickAsync();
        await page.WaitForURLAsync($"{_origin}/t/acme/account/security");

        // Synced passkeys keep no signature count (theirs stays 0), which leaves Identity's counter check nothing to
        // compare: the stored count is put back to 0, as such an account's is.
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            var row = await db.UserPasskeys.SingleAsync();
            row.Data.SignCount = 0;
            await db.SaveChangesAsync();
        }

        // Act: the same answer, sent again from another browser (its own anti-forgery pair) within the 5 minutes.
        var form = QueryHelpers.ParseQuery(answer);
        using var other = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(_origin) };
        var login = await other.GetStringAsync("/t/acme/login");
        var replayed = await other.PostAsync("/t/acme/login?handler=passkey", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Credential"] = form["Credential"].ToString(),
            ["State"] = form["State"].ToString(),
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(login),
        }));

        // Assert: refused with the page's message, no session, and the attempt logged as failed.
        Assert.Equal(HttpStatusCode.OK, replayed.StatusCode);
        Assert.Contains(LoginModel.PasskeyFailedMessage, WebUtility.HtmlDecode(await replayed.Content.ReadAsStringAsync()));
        Assert.Equal(HttpStatusCode.Redirect, (await other.GetAsync("/t/acme/account/security")).StatusCode);
        Assert.Equal(["succeeded", "failed"], (await _factory.SignInEventsAsync("acme")).TakeLast(2).Select(e => e.Outcome));
    }

    [Fact]
    public async Task ACredentialIdAnotherTenantHolds_IsNotRegistered_AndItsPasskeyIsKept()
    {
        // Arrange: ada's passkey at acme; at globex, a person whose authenticator answers with ada's credential id
        // (a "none" attestation signs nothing, so any authenticator can name any id).
        var (page, _) = await NewPageWithAuthenticatorAsync();
        await AddPasskeyAsync(page, "acme", Email);
        var before = await PasskeyRowsAsync();
        var adas = Assert.Single(before);
        await _factory.CreateTenantAsync("globex");
        await _factory.CreateUserAsync("globex", "eve@globex.test", Password);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/globex/policy", new { mfa = new { mode = "optional", factors = new[] { "totp", "passkey" } } }, HttpStatusCode.OK);
        var (eve, _) = await NewPageWithAuthenticatorAsync();
        await eve.RouteAsync(url => url.Contains("handler=addpasskey", StringComparison.OrdinalIgnoreCase), async route =>
        {
            var form = QueryHelpers.ParseQuery(route.Request.PostData);
            var credential = JsonNode.Parse(form["Credential"].ToString())!;
            var own = WebEncoders.Base64UrlDecode(credential["rawId"]!.GetValue<string>());
            Assert.Equal(own.Length, adas.CredentialId.Length);
            credential["id"] = WebEncoders.Base64UrlEncode(adas.CredentialId);
            credential["rawId"] = WebEncoders.Base64UrlEncode(adas.CredentialId);
            foreach (var field in new[] { "attestationObject", "authenticatorData" })
            {
                var bytes = WebEncoders.Base64UrlDecode(credential["response"]![field]!.GetValue<string>());
                var at = bytes.AsSpan().IndexOf(own);
                Assert.True(at >= 0, $"The credential id is in {field}.");
                adas.CredentialId.CopyTo(bytes, at);
                credential["response"]![field] = WebEncoders.Base64UrlEncode(bytes);
            }

            var body = form.ToDictionary(f => f.Key, f => f.Value.ToString());
            body["Credential"] = credential.ToJsonString();
            await route.ContinueAsync(new RouteContinueOptions { PostData = System.Text.Encoding.UTF8.GetBytes(await new FormUrlEncodedContent(body).ReadAsStringAsync()) });
        });

        // Act
        await eve.GotoAsync($"{_origin}/t/globex/login?ReturnUrl=%2Ft%2Fglobex%2Faccount%2Fsecurity");
        await PasswordAsync(eve, "eve@globex.test");
        await eve.GetByLabel("Name for the new passkey").FillAsync("Eve's");
        await eve.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Add a passkey" }).ClickAsync();
        await eve.GetByText(SecurityModel.PasskeyAddedMessage).Or(eve.GetByText(SecurityModel.PasskeyFailedMessage)).First.WaitForAsync();

        // Assert: refused at globex; ada's passkey is as it was (her account, its name, its signature count: a count set
        // high by another would refuse her authenticator's next answers), and nothing else was kept.
        var after = Assert.Single(await PasskeyRowsAsync());
        Assert.Equal((adas.UserId, adas.Data.Name, adas.Data.SignCount), (after.UserId, after.Data.Name, after.Data.SignCount));
        Assert.Equal(adas.Data.PublicKey, after.Data.PublicKey);
        Assert.Equal(1, await eve.GetByText(SecurityModel.PasskeyFailedMessage).CountAsync());
    }

    [Fact]
    public async Task AnAuthenticatorThatCannotVerifyThePerson_AddsNoPasskey()
    {
        // A security key without a PIN or biometric: user verification is required (Identity's default), so a passkey
        // always stands for two factors, as a second step and alone.
        var (page, authenticator) = await NewPageWithAuthenticatorAsync(userVerification: false);
        await page.GotoAsync($"{_origin}/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fsecurity");
        await PasswordAsync(page);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Add a passkey" }).ClickAsync();

        await page.GetByText(SecurityModel.PasskeyAddedMessage).Or(page.Locator(".passkey-status:not(:empty)")).Or(page.GetByText(SecurityModel.PasskeyFailedMessage)).First.WaitForAsync();

        Assert.Equal(0, await page.GetByText(SecurityModel.PasskeyAddedMessage).CountAsync());
        Assert.Equal("No passkey is set up.", await page.Locator("#passkeys-status").InnerTextAsync());
    }

    /// <summary>Signs in with the password on the tenant's security page and adds a passkey there.</summary>
    private async Task AddPasskeyAsync(IPage page, string tenant, string email)
    {
        await page.GotoAsync($"{_origin}/t/{tenant}/login?ReturnUrl=%2Ft%2F{tenant}%2Faccount%2Fsecurity");
        await PasswordAsync(page, email);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Add a passkey" }).ClickAsync();
        await page.GetByText(SecurityModel.PasskeyAddedMessage).WaitForAsync();
    }

    /// <summary>Every tenant's stored passkeys, as the database holds them.</summary>
    private async Task<List<IdentityUserPasskey<Guid>>> PasskeyRowsAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        return await scope.ServiceProvider.GetRequiredService<IdentityDb>().UserPasskeys.AsNoTracking().ToListAsync();
    }

    private static async Task PasswordAsync(IPage page, string email = Email)
    {
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Sign in" }).ClickAsync();
    }

    /// <summary>A fresh browser context with a virtual platform authenticator (user verification given, unless said), the client's site answered locally.</summary>
    private async Task<(IPage Page, (ICDPSession Session, string Id) Authenticator)> NewPageWithAuthenticatorAsync(bool userVerification = true)
    {
        var context = await Chromium.NewClientContextAsync(_browser!);
        var page = await context.NewPageAsync();
        var session = await context.NewCDPSessionAsync(page);
        await session.SendAsync("WebAuthn.enable");
        var added = await session.SendAsync("WebAuthn.addVirtualAuthenticator", new()
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2",
                ["transport"] = "internal",
                ["hasResidentKey"] = true,
                ["hasUserVerification"] = userVerification,
                ["isUserVerified"] = userVerification,
                ["automaticPresenceSimulation"] = true,
            },
        });
        return (page, (session, added!.Value.GetProperty("authenticatorId").GetString()!));
    }
}
