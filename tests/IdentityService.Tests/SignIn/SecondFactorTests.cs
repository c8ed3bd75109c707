using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using IdentityService.SignIn.Pages;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using OtpNet;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// Second factors after a right password: an authenticator app (TOTP, set up at the first sign-in where the
/// tenant requires a second factor), a code by email through a real SMTP server, and a code by SMS through a
/// local server that speaks Twilio's API. Codes work once; wrong codes end the challenge and lock the account's
/// second factor; the ID token says how the user signed in.
/// </summary>
public sealed partial class SecondFactorTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private FakeTwilio _twilio = null!;
    private IdentityServiceFactory _factory = null!;
    private string _userId = "";

    public async Task InitializeAsync()
    {
        _twilio = await FakeTwilio.StartAsync();
        _factory = new IdentityServiceFactory { Output = output };
        foreach (var (key, value) in _smtp.Settings.Concat(_twilio.Settings()))
        {
            _factory.Settings[key] = value;
        }

        await _factory.CreateTenantAsync(Tenant);
        _userId = await _factory.CreateUserAsync(Tenant, Email, Password, new { phoneNumber = "+33612345678", phoneNumberVerified = true });
    }

    public async Task DisposeAsync()
    {
        await _smtp.DisposeAsync();
        await _twilio.DisposeAsync();
    }

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task RequiredMfa_AnAccountWithoutAFactor_SetsUpAnAuthenticatorApp_ThenSignsInWithIt()
    {
        await PolicyAsync("required", "totp");
        using var browser = _factory.CreateBrowser();
        var mfa = await PasswordAsync(browser);
        Assert.Equal("/t/acme/mfa", mfa.AbsolutePath);
        Assert.Equal("/t/acme/after", QueryHelpers.ParseQuery(mfa.Query)["ReturnUrl"]);

        var page = await browser.GetStringAsync(mfa);
        Assert.Contains("src=\"data:image/png;base64,", page);
        Assert.Contains("autocomplete=\"one-time-code\"", page);
        var secret = Secret().Match(page).Groups[1].Value;
        Assert.Equal(32, secret.Length);

        var wrong = await PostAsync(browser, new() { ["Factor"] = "totp", ["Code"] = "000000" });
        Assert.Contains(MfaModel.WrongCodeMessage, wrong.Html);
        // Signed in, the page shows the new recovery codes once, then goes on to where the sign-in was going.
        var done = await PostAsync(browser, new() { ["Factor"] = "totp", ["Code"] = Code(secret) });
        Assert.Equal(HttpStatusCode.OK, done.Status);
        Assert.Equal(10, RecoveryCodeTests.Codes(done.Html).Count);
        Assert.Equal("/t/acme/after", RecoveryCodeTests.ContinueUrl(done.Html));
        var user = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}", expected: HttpStatusCode.OK);
        Assert.True(user["mfaEnrolled"]!.GetValue<bool>());

        // The next sign-in asks the app's code, shows no QR code, and never takes the same code twice.
        using var next = _factory.CreateBrowser();
        await PasswordAsync(next);
        var asked = await next.GetStringAsync("/t/acme/mfa");
        Assert.DoesNotContain("data:image/png", asked);
        Assert.DoesNotContain(secret, asked);
        Assert.Contains(MfaModel.WrongCodeMessage, (await PostAsync(next, new() { ["Factor"] = "totp", ["Code"] = Code(secret) })).Html);
        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.Redirect, (await PostAsync(next, new() { ["Factor"] = "totp", ["Code"] = Code(secret) })).Status);

        var events = await EventsAsync();
        Assert.Contains("mfa.enrolled:succeeded:", events);
        Assert.Equal(2, events.Count(e => e == "signin.succeeded:succeeded:"));
        Assert.Equal(2, events.Count(e => e == "signin.failed:failed:mfa_code_invalid"));
        Assert.Equal(2, events.Count(e => e == "signin.challenged:challenged:mfa_required"));
    }

    [Fact]
    public async Task AnEmailedCode_IsSentOnlyWhenAsked_AndWorksOnce()
    {
        await PolicyAsync("required", "email");
        using var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        var page = await browser.GetStringAsync("/t/acme/mfa");
        Assert.Contains("Send a code to a•••@acme.test", WebUtility.HtmlDecode(page));
        Assert.Empty(_smtp.Messages);

        var sent = await PostAsync(browser, new() { ["Factor"] = "email" }, handler: "send");
        Assert.Contains("We sent a code to a•••@acme.test", WebUtility.HtmlDecode(sent.Html));
        await Eventually.TrueAsync(() => !_smtp.Messages.IsEmpty, "No code was mailed.");
        var mail = Assert.Single(_smtp.Messages);
        Assert.Equal(Email, mail.To.Mailboxes.Single().Address);
        var code = SixDigits().Match(mail.Subject!).Value;
        Assert.Contains($"Your ACME sign-in code is {code}", mail.TextBody);

        // An authenticator code is no answer for an account that has no authenticator.
        Assert.Contains(MfaModel.WrongCodeMessage, (await PostAsync(browser, new() { ["Factor"] = "totp", ["Code"] = code })).Html);
        var done = await PostAsync(browser, new() { ["Factor"] = "email", ["Code"] = code[..3] + " " + code[3..] });
        Assert.Equal(HttpStatusCode.Redirect, done.Status);
        Assert.Contains(MfaModel.ExpiredMessage, await browser.GetStringAsync("/t/acme/mfa"));
    }

    [Fact]
    public async Task AnSmsCode_GoesThroughTwilio()
    {
        await PolicyAsync("required", "sms");
        using var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        Assert.Contains("phone number ending 5678", await browser.GetStringAsync("/t/acme/mfa"));

        await PostAsync(browser, new() { ["Factor"] = "sms" }, handler: "send");
        var (to, from, body) = Assert.Single(_twilio.Messages);
        Assert.Equal("+33612345678", to);
        Assert.Equal(FakeTwilio.From, from);
        var code = SixDigits().Match(body).Value;
        Assert.StartsWith($"{code} is your ACME sign-in code", body);

        // A new code replaces the one before.
        await PostAsync(browser, new() { ["Factor"] = "sms" }, handler: "send");
        var newer = SixDigits().Match(_twilio.Messages.Last().Body).Value;
        if (newer != code)
        {
            Assert.Contains(MfaModel.WrongCodeMessage, (await PostAsync(browser, new() { ["Factor"] = "sms", ["Code"] = code })).Html);
        }

        Assert.Equal(HttpStatusCode.Redirect, (await PostAsync(browser, new() { ["Factor"] = "sms", ["Code"] = newer })).Status);
    }

    [Fact]
    public async Task ThreeCodesAChallenge_AndTwilioRefusing_SaySoOnThePage()
    {
        await PolicyAsync("required", "sms");
        using var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        for (var i = 0; i < 3; i++)
        {
            await PostAsync(browser, new() { ["Factor"] = "sms" }, handler: "send");
        }

        var fourth = await PostAsync(browser, new() { ["Factor"] = "sms" }, handler: "send");
        Assert.Contains(MfaModel.NotSentMessage, fourth.Html);
        Assert.DoesNotContain("id=\"send-sms\"", fourth.Html);
        Assert.Equal(3, _twilio.Messages.Count);

        using var wrongToken = new IdentityServiceFactory(_factory) { Output = output };
        foreach (var (key, value) in _twilio.Settings(authToken: "not-the-token"))
        {
            wrongToken.Settings[key] = value;
        }

        using var other = wrongToken.CreateBrowser();
        await PasswordAsync(other);
        Assert.Contains(MfaModel.NotSentMessage, (await PostAsync(other, new() { ["Factor"] = "sms" }, handler: "send")).Html);
        Assert.Equal(3, _twilio.Messages.Count);
    }

    [Fact]
    public async Task FiveWrongCodes_EndTheChallenge_AndTheLockoutCountsThem()
    {
        await PolicyAsync("required", "email");
        using var browser = _factory.CreateBrowser();
        for (var round = 0; round < 2; round++)
        {
            await PasswordAsync(browser);
            await PostAsync(browser, new() { ["Factor"] = "email" }, handler: "send");
            for (var i = 1; i <= 5; i++)
            {
                var answer = await PostAsync(browser, new() { ["Factor"] = "email", ["Code"] = "000000" });
                Assert.Contains(i == 5 ? MfaModel.EndedMessage : MfaModel.WrongCodeMessage, answer.Html);
            }
        }

        // Ten wrong codes: the account's second factor is locked for the lockout's 10 minutes, right code or not.
        await Eventually.TrueAsync(() => _smtp.Messages.Count == 2, "The two rounds' codes were not both mailed.");
        _smtp.Messages.Clear();
        await PasswordAsync(browser);
        await PostAsync(browser, new() { ["Factor"] = "email" }, handler: "send");
        await Eventually.TrueAsync(() => !_smtp.Messages.IsEmpty);
        var code = SixDigits().Match(_smtp.Messages.Single().Subject!).Value;
        Assert.Contains(MfaModel.LockedMessage, (await PostAsync(browser, new() { ["Factor"] = "email", ["Code"] = code })).Html);

        _factory.Time.Advance(TimeSpan.FromMinutes(10));
        _smtp.Messages.Clear();
        await PasswordAsync(browser);
        await PostAsync(browser, new() { ["Factor"] = "email" }, handler: "send");
        await Eventually.TrueAsync(() => !_smtp.Messages.IsEmpty);
        code = SixDigits().Match(_smtp.Messages.Single().Subject!).Value;
        Assert.Equal(HttpStatusCode.Redirect, (await PostAsync(browser, new() { ["Factor"] = "email", ["Code"] = code })).Status);
    }

    [Fact]
    public async Task AChallenge_LastsTenMinutes()
    {
        await PolicyAsync("required", "totp");
        using var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        var page = await browser.GetStringAsync("/t/acme/mfa");
        var secret = Secret().Match(page).Groups[1].Value;

        _factory.Time.Advance(TimeSpan.FromMinutes(10));
        var late = await PostAsync(browser, new() { ["Factor"] = "totp", ["Code"] = Code(secret) }, token: page);
        Assert.Contains(MfaModel.ExpiredMessage, late.Html);
        Assert.Contains("id=\"sign-in-again\"", late.Html);
        var user = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}", expected: HttpStatusCode.OK);
        Assert.False(user["mfaEnrolled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task OptionalMfa_AsksOnlyAccountsThatEnrolled_AndAnAdminCanRemoveTheApp()
    {
        await _factory.CreateUserAsync(Tenant, "bob@acme.test", Password);
        await PolicyAsync("required", "totp");
        using var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        var secret = Secret().Match(await browser.GetStringAsync("/t/acme/mfa")).Groups[1].Value;
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(browser, new() { ["Factor"] = "totp", ["Code"] = Code(secret) })).Status);

        await PolicyAsync("optional", "totp");
        Assert.Equal("/t/acme/mfa", (await PasswordAsync(_factory.CreateBrowser())).AbsolutePath);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("bob@acme.test", Password)).SignedIn);

        var removed = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{_userId}/mfa");
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{Guid.NewGuid()}/mfa")).StatusCode);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync(Email, Password)).SignedIn);
        Assert.Contains("mfa.removed:succeeded:", await EventsAsync());

        // Required again: the account sets up a new app; the old one's codes are no longer taken.
        await PolicyAsync("required", "totp");
        using var again = _factory.CreateBrowser();
        await PasswordAsync(again);
        var renewed = Secret().Match(await again.GetStringAsync("/t/acme/mfa")).Groups[1].Value;
        Assert.NotEqual(secret, renewed);
    }

    [Fact]
    public async Task TheIdToken_SaysASecondFactorWasUsed()
    {
        await PolicyAsync("required", "email");
        await _factory.CreateWebClientAsync(Tenant);
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, Tenant, "web");
        var login = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        var html = await browser.GetStringAsync(login.PathAndQuery);
        var posted = await browser.PostAsync(login.PathAndQuery, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = Email,
            ["Password"] = Password,
            ["ReturnUrl"] = WebUtility.HtmlDecode(OidcFlow.Hidden(html, "ReturnUrl")),
            ["__RequestVerificationToken"] = OidcFlow.Hidden(html, "__RequestVerificationToken"),
        }));
        var mfa = OidcFlow.Location(posted);
        var returnUrl = QueryHelpers.ParseQuery(mfa.Query)["ReturnUrl"].ToString();
        await PostAsync(browser, new() { ["Factor"] = "email", ["ReturnUrl"] = returnUrl }, handler: "send");
        await Eventually.TrueAsync(() => !_smtp.Messages.IsEmpty);
        var done = await PostAsync(browser, new() { ["Factor"] = "email", ["ReturnUrl"] = returnUrl, ["Code"] = SixDigits().Match(_smtp.Messages.Single().Subject!).Value });
        var code = QueryHelpers.ParseQuery(OidcFlow.Location(await browser.GetAsync(done.Location!.OriginalString)).Query)["code"].ToString();
        var tokens = JsonDocument.Parse(await (await flow.RedeemAsync(code)).Content.ReadAsStringAsync()).RootElement;

        var idToken = tokens.GetProperty("id_token").GetString()!.Split('.')[1];
        var claims = JsonDocument.Parse(Base64UrlTextEncoder.Decode(idToken)).RootElement;
        Assert.Equal(["pwd", "otp", "mfa"], claims.GetProperty("amr").EnumerateArray().Select(a => a.GetString()));
        var refreshed = JsonDocument.Parse(await (await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).Content.ReadAsStringAsync()).RootElement;
        var again = JsonDocument.Parse(Base64UrlTextEncoder.Decode(refreshed.GetProperty("id_token").GetString()!.Split('.')[1])).RootElement;
        Assert.Equal(["pwd", "otp", "mfa"], again.GetProperty("amr").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public async Task WithoutAUsableFactor_TheSignInStops_AndNeverSetsOneUpForAStepUp()
    {
        // SMS only, and this account's number is not verified: nothing to answer with.
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { phoneNumberVerified = false }, HttpStatusCode.OK);
        await PolicyAsync("required", "sms");
        var answer = await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync(Email, Password);
        Assert.Contains(LoginModel.SecondFactorMessage, answer.Html);

        // A step-up on a new device is not answered by an app the password alone sets up.
        await _factory.ManageOkAsync(HttpMethod.Put, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "off", factors = new[] { "totp" }, stepUp = new { enabled = true, newDevice = true } } }, HttpStatusCode.OK);
        answer = await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync(Email, Password);
        Assert.Contains(LoginModel.SecondFactorMessage, answer.Html);
    }

    [Theory]
    [InlineData("admin sets a password")]
    [InlineData("owner resets the password")]
    [InlineData("owner changes the password")]
    [InlineData("owner signs out everywhere else")]
    public async Task ASecondStepUnderWay_Ends_WhenTheOwnerTakesTheAccountBack(string how)
    {
        // Someone with the password is at the second step, with a code they can read (a shared mailbox, say).
        await PolicyAsync("required", "email");
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { emailVerified = true }, HttpStatusCode.OK);
        using var taker = _factory.CreateBrowser();
        await PasswordAsync(taker);
        await PostAsync(taker, new() { ["Factor"] = "email" }, handler: "send");
        await Eventually.TrueAsync(() => !_smtp.Messages.IsEmpty, "No code was mailed.");
        var code = SixDigits().Match(_smtp.Messages.Single().Subject!).Value;
        _smtp.Messages.Clear();

        // The owner, told someone knows the password, takes the account back.
        const string NewPassword = "another horse battery staple";
        if (how == "admin sets a password")
        {
            await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { password = NewPassword }, HttpStatusCode.OK);
        }
        else if (how == "owner resets the password")
        {
            using var owner = _factory.CreateBrowser();
            await PageForms.PostAsync(owner, "/t/acme/forgot-password", new() { ["Email"] = Email });
            var link = SmtpCapture.LinkIn(await _smtp.MailToAsync(Email), "/reset-password");
            await PageForms.PostAsync(owner, link, new() { ["NewPassword"] = NewPassword, ["ConfirmPassword"] = NewPassword }, "/t/acme/forgot-password");
        }
        else
        {
            // Signed in on their own browser, where their second step is answered from a remembered-free session.
            using var owner = _factory.CreateBrowser();
            await PasswordAsync(owner);
            await PostAsync(owner, new() { ["Factor"] = "email" }, handler: "send");
            var ownCode = SixDigits().Match((await _smtp.MailToAsync(Email)).Subject!).Value;
            Assert.Equal(HttpStatusCode.Redirect, (await PostAsync(owner, new() { ["Factor"] = "email", ["Code"] = ownCode })).Status);
            await (how == "owner changes the password"
                ? PageForms.PostAsync(owner, "/t/acme/account/password", new() { ["CurrentPassword"] = Password, ["NewPassword"] = NewPassword, ["ConfirmPassword"] = NewPassword })
                : PageForms.PostAsync(owner, "/t/acme/account/security?handler=signoutothers", []));
        }

        // The code the taker holds signs nobody in.
        var late = await PostAsync(taker, new() { ["Factor"] = "email", ["Code"] = code });
        Assert.NotEqual(HttpStatusCode.Redirect, late.Status);
        Assert.Equal(HttpStatusCode.Redirect, (await taker.GetAsync("/t/acme/account/profile")).StatusCode);
    }

    private Task PolicyAsync(string mode, params string[] factors) =>
        _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode, factors } }, HttpStatusCode.OK);

    /// <summary>Posts the right password on the sign-in page; answers where it sends the browser (the second step).</summary>
    [Fact]
    public async Task WrongCodesSentAtOnce_StillEndTheChallengeAtFive()
    {
        await PolicyAsync("required", "email");
        using var browser = _factory.CreateBrowser();
        await PasswordAsync(browser);
        await PostAsync(browser, new() { ["Factor"] = "email" }, handler: "send");
        await Eventually.TrueAsync(() => !_smtp.Messages.IsEmpty);
        var code = SixDigits().Match(_smtp.Messages.Single().Subject!).Value;

        // Eight wrong codes in parallel: each read the challenge before any was counted.
        var page = await browser.GetStringAsync("/t/acme/mfa");
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            PostAsync(browser, new() { ["Factor"] = "email", ["Code"] = code == "000000" ? "111111" : "000000" }, token: page)));
        Assert.Contains(answers, a => a.Html.Contains(MfaModel.EndedMessage));

        // The challenge is over: its right code no longer signs in.
        var late = await PostAsync(browser, new() { ["Factor"] = "email", ["Code"] = code });
        Assert.NotEqual(HttpStatusCode.Redirect, late.Status);
    }

    private static async Task<Uri> PasswordAsync(HttpClient browser)
    {
        var answer = await new SignInPage(browser, Tenant).PostAsync(Email, Password, query: "?ReturnUrl=%2Ft%2Facme%2Fafter");
        Assert.Equal(HttpStatusCode.Redirect, answer.Status);
        return new Uri(new Uri("http://localhost"), answer.Location!);
    }

    private static async Task<SignInPage.Answer> PostAsync(
        HttpClient browser, Dictionary<string, string> fields, string? handler = null, string? token = null)
    {
        fields["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(token ?? await browser.GetStringAsync("/t/acme/mfa"));
        fields.TryAdd("ReturnUrl", "/t/acme/after");
        var response = await browser.PostAsync("/t/acme/mfa" + (handler is null ? "" : "?handler=" + handler), new FormUrlEncodedContent(fields));
        return new SignInPage.Answer(response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.Location);
    }

    private string Code(string secret) => new Totp(Base32Encoding.ToBytes(secret)).ComputeTotp(_factory.Time.GetUtcNow().UtcDateTime);

    private async Task<List<string>> EventsAsync() =>
        (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?limit=100", expected: HttpStatusCode.OK))["items"]!.AsArray()
            .Select(i => $"{i!["type"]}:{i["outcome"]}:{i["details"]?["reason"]}").ToList();

    [GeneratedRegex("<code id=\"secret\">([A-Z2-7]+)</code>")]
    private static partial Regex Secret();

    [GeneratedRegex("[0-9]{6}")]
    private static partial Regex SixDigits();
}
