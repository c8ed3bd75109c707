using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using IdentityService.SignIn.Pages;
using IdentityService.SignIn.Pages.Account;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using OtpNet;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// Recovery codes: made with an authenticator app (at sign-in or on the security page) and shown once; each signs
/// in once in place of the app's code, mails the account's owner, and counts as a wrong code when wrong. New codes
/// end the old; an admin removing the app removes them.
/// </summary>
public sealed partial class RecoveryCodeTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;
    private string _userId = "";

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);

        await _factory.CreateTenantAsync(Tenant);
        _userId = await _factory.CreateUserAsync(Tenant, Email, Password);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "required", factors = new[] { "totp" } } }, HttpStatusCode.OK);
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    /// <summary>The recovery codes a page shows.</summary>
    public static List<string> Codes(string html) => ListedCode().Matches(html).Select(m => m.Groups[1].Value).ToList();

    /// <summary>Where the page's "continue" link goes.</summary>
    public static string ContinueUrl(string html) => WebUtility.HtmlDecode(ContinueLink().Match(html).Groups[1].Value);

    [Fact]
    public async Task ARecoveryCode_SignsInOnce_InPlaceOfTheApp_AndTheOwnerIsMailed()
    {
        var (codes, _) = await EnrollAsync();
        Assert.Equal(10, codes.Distinct().Count());
        Assert.All(codes, c => Assert.Matches("^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$", c));

        // Typed in lower case without its dashes, through an authorization request: the ID token says two factors, not which.
        await _factory.CreateWebClientAsync(Tenant);
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, Tenant, "web");
        var returnUrl = await ToSecondStepAsync(browser, flow);
        var offered = await browser.GetStringAsync("/t/acme/mfa");
        Assert.Contains("id=\"verify-recovery\"", offered);
        Assert.Matches("<input id=\"code-recovery\"[^>]*autocomplete=\"one-time-code\"", offered);
        var done = await PostAsync(browser, new() { ["Factor"] = "recovery", ["Code"] = codes[0].Replace("-", "").ToLowerInvariant(), ["ReturnUrl"] = returnUrl });
        var code = QueryHelpers.ParseQuery(OidcFlow.Location(await browser.GetAsync(done.Location!.OriginalString)).Query)["code"].ToString();
        var idToken = JsonDocument.Parse(await (await flow.RedeemAsync(code)).Content.ReadAsStringAsync()).RootElement.GetProperty("id_token").GetString()!;
        var amr = JsonDocument.Parse(Base64UrlTextEncoder.Decode(idToken.Split('.')[1])).RootElement.GetProperty("amr");
        Assert.Equal(["pwd", "mfa"], amr.EnumerateArray().Select(a => a.GetString()));

        await Eventually.TrueAsync(() => !_smtp.Messages.IsEmpty, "The owner was not told a recovery code was used.");
        var mail = Assert.Single(_smtp.Messages);
        Assert.Equal("A recovery code was used to sign in to ACME", mail.Subject);
        Assert.Contains("You have 9 left.", mail.TextBody);

        // Used once, it is no answer again.
        using var again = _factory.CreateBrowser();
        await PasswordAsync(again);
        Assert.Contains(MfaModel.WrongCodeMessage, (await PostAsync(again, new() { ["Factor"] = "recovery", ["Code"] = codes[0] })).Html);
        Assert.Equal(HttpStatusCode.Redirect, (await PostAsync(again, new() { ["Factor"] = "recovery", ["Code"] = codes[1] })).Status);

        var events = await EventsAsync();
        Assert.Equal(2, events.Count(e => e == "signin.succeeded:recovery"));
        Assert.Single(events, e => e == "signin.failed:recovery");
        Assert.Single(events, e => e == "mfa.recovery_codes_created:");
    }

    [Fact]
    public async Task NewCodesOnTheSecurityPage_EndTheOldOnes()
    {
        var (old, browser) = await EnrollAsync();
        using (browser)
        {
            var page = await browser.GetStringAsync("/t/acme/account/security");
            Assert.Contains("You have 10 recovery codes left.", page);
            Assert.Empty(Codes(page));

            var made = await SecurityPostAsync(browser, "recovery");
            Assert.Contains(SecurityModel.NewCodesMessage, made);
            var fresh = Codes(made);
            Assert.Equal(10, fresh.Count);
            Assert.Empty(fresh.Intersect(old));

            // Only fresh sign-ins make new codes: 10 minutes later the page asks to sign in again and shows none.
            _factory.Time.Advance(TimeSpan.FromMinutes(11));
            var stale = await SecurityPostAsync(browser, "recovery");
            Assert.Contains(WebUtility.HtmlEncode(SecurityModel.StaleMessage), stale);
            Assert.Empty(Codes(stale));

            using var next = _factory.CreateBrowser();
            await PasswordAsync(next);
            Assert.Contains(MfaModel.WrongCodeMessage, (await PostAsync(next, new() { ["Factor"] = "recovery", ["Code"] = old[3] })).Html);
            Assert.Equal(HttpStatusCode.Redirect, (await PostAsync(next, new() { ["Factor"] = "recovery", ["Code"] = fresh[3] })).Status);
            Assert.Contains("You have 9 recovery codes left.", await next.GetStringAsync("/t/acme/account/security"));
        }
    }

    [Fact]
    public async Task WrongRecoveryCodes_EndTheChallenge_LikeWrongAppCodes()
    {
        var (codes, _) = await EnrollAsync();
        using var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        for (var i = 1; i < 5; i++)
        {
            Assert.Contains(MfaModel.WrongCodeMessage, (await PostAsync(browser, new() { ["Factor"] = "recovery", ["Code"] = $"not a code {i}" })).Html);
        }

        Assert.Contains(MfaModel.EndedMessage, (await PostAsync(browser, new() { ["Factor"] = "recovery", ["Code"] = "0000-0000-0000-0000" })).Html);
        Assert.Contains(MfaModel.ExpiredMessage, (await PostAsync(browser, new() { ["Factor"] = "recovery", ["Code"] = codes[0] }, token: await browser.GetStringAsync("/t/acme/login"))).Html);
    }

    [Fact]
    public async Task AnAdminRemovingTheApp_RemovesTheCodes()
    {
        var (codes, _) = await EnrollAsync();
        var removed = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{_userId}/mfa");
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);

        // The tenant requires a second factor: the account sets up a new app, and the old codes are nothing.
        using var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        var page = await browser.GetStringAsync("/t/acme/mfa");
        Assert.Contains("id=\"qr\"", page);
        Assert.DoesNotContain("id=\"verify-recovery\"", page);
        Assert.Contains(MfaModel.WrongCodeMessage, (await PostAsync(browser, new() { ["Factor"] = "recovery", ["Code"] = codes[0] })).Html);
    }

    /// <summary>Signs in for the first time, setting up the app; answers the recovery codes shown, and the signed-in browser.</summary>
    private async Task<(List<string> Codes, HttpClient Browser)> EnrollAsync()
    {
        var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        var secret = Secret().Match(await browser.GetStringAsync("/t/acme/mfa")).Groups[1].Value;
        var done = await PostAsync(browser, new() { ["Factor"] = "totp", ["Code"] = new Totp(Base32Encoding.ToBytes(secret)).ComputeTotp(_factory.Time.GetUtcNow().UtcDateTime) });
        Assert.Equal(HttpStatusCode.OK, done.Status);
        Assert.Equal("/t/acme/after", ContinueUrl(done.Html));
        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        return (Codes(done.Html), browser);
    }

    private static async Task PasswordAsync(HttpClient browser)
    {
        var answer = await new SignInPage(browser, Tenant).PostAsync(Email, Password, query: "?ReturnUrl=%2Ft%2Facme%2Fafter");
        Assert.StartsWith("/t/acme/mfa", answer.Location!.OriginalString);
    }

    /// <summary>An authorization request up to the second step; answers the return URL that goes on with it.</summary>
    private static async Task<string> ToSecondStepAsync(HttpClient browser, OidcFlow flow)
    {
        var login = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        var html = await browser.GetStringAsync(login.PathAndQuery);
        var posted = await browser.PostAsync(login.PathAndQuery, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = Email,
            ["Password"] = Password,
            ["ReturnUrl"] = WebUtility.HtmlDecode(OidcFlow.Hidden(html, "ReturnUrl")),
            ["__RequestVerificationToken"] = OidcFlow.Hidden(html, "__RequestVerificationToken"),
        }));
        return QueryHelpers.ParseQuery(OidcFlow.Location(posted).Query)["ReturnUrl"].ToString();
    }

    private static async Task<SignInPage.Answer> PostAsync(HttpClient browser, Dictionary<string, string> fields, string? token = null)
    {
        fields["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(token ?? await browser.GetStringAsync("/t/acme/mfa"));
        fields.TryAdd("ReturnUrl", "/t/acme/after");
        var response = await browser.PostAsync("/t/acme/mfa", new FormUrlEncodedContent(fields));
        return new SignInPage.Answer(response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.Location);
    }

    private static async Task<string> SecurityPostAsync(HttpClient browser, string handler)
    {
        var form = await browser.GetStringAsync("/t/acme/account/security");
        var fields = new Dictionary<string, string> { ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(form) };
        var response = await browser.PostAsync($"/t/acme/account/security?handler={handler}", new FormUrlEncodedContent(fields));
        return await response.Content.ReadAsStringAsync();
    }

    private async Task<List<string>> EventsAsync() =>
        (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?limit=100", expected: HttpStatusCode.OK))["items"]!.AsArray()
            .Select(i => $"{i!["type"]}:{i["details"]?["factor"]}").ToList();

    [GeneratedRegex("<code id=\"secret\">([A-Z2-7]+)</code>")]
    private static partial Regex Secret();

    [GeneratedRegex("<li><code>([0-9A-Z-]{19})</code></li>")]
    private static partial Regex ListedCode();

    [GeneratedRegex("<a href=\"([^\"]*)\" id=\"continue\">")]
    private static partial Regex ContinueLink();
}
