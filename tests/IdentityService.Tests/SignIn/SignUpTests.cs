using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using IdentityService.SignIn.Pages;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// Self-service sign-up, with a real SMTP server on this machine: off until a tenant opens it; the account exists
/// only once the emailed link is used; an address that has an account gets the same answer on the page (and its
/// owner a mail); the sign-in page's protections and the tenant's password rules hold.
/// </summary>
public sealed partial class SignUpTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Password = "correct horse battery staple";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);

        await _factory.CreateTenantAsync(Tenant);
        await _factory.CreateWebClientAsync(Tenant);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { enabled = true } }, HttpStatusCode.OK);
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ASignUp_FromAnAuthorizationRequest_MakesTheAccountOnlyWhenTheEmailedLinkIsConfirmed()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, Tenant, "web") { Scope = "openid email" };
        var login = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        var signUpPage = "/t/acme/" + WebUtility.HtmlDecode(Href(await browser.GetStringAsync(login.PathAndQuery), "signup"));
        var returnUrl = Uri.UnescapeDataString(login.Query[(login.Query.IndexOf('=') + 1)..]);
        Assert.StartsWith("/t/acme/connect/authorize?", returnUrl);

        var form = await browser.GetStringAsync(signUpPage);
        Assert.Contains("autocomplete=\"new-password\"", form);
        var sent = await PostAsync(browser, signUpPage, "grace@acme.test", Password);
        Assert.Contains("Check your email. We have sent a message to grace@acme.test", sent);
        Assert.Empty(await UsersAsync("grace@acme.test"));

        var mail = await _smtp.MailToAsync("grace@acme.test");
        Assert.Equal("Confirm your email address for ACME", mail.Subject);
        Assert.Contains("within 60 minutes", mail.TextBody);
        var link = SmtpCapture.LinkIn(mail, "/signup/confirm");
        Assert.StartsWith("http://localhost/t/acme/signup/confirm?token=", link);

        // Opening the link (as a mail scanner would) makes nothing: the button does.
        Assert.Contains("Confirm and create the account", await browser.GetStringAsync(link));
        Assert.Empty(await UsersAsync("grace@acme.test"));
        var done = await PageForms.PostAsync(browser, link, new() { ["Password"] = Password });
        Assert.Contains("Your account is ready.", done);
        var user = Assert.Single(await UsersAsync("grace@acme.test"));
        Assert.True(user!["emailVerified"]!.GetValue<bool>());

        // The sign-in link goes back to the authorization request, the address filled in.
        var signIn = new Uri(new Uri(link), WebUtility.HtmlDecode(Href(done, "signin")));
        Assert.Equal("/t/acme/login", signIn.AbsolutePath);
        var query = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(signIn.Query);
        Assert.Equal(returnUrl, query["ReturnUrl"].ToString());
        Assert.Contains("value=\"grace@acme.test\"", await browser.GetStringAsync(signIn.PathAndQuery));

        var tokens = await flow.SignInAsync("grace@acme.test", Password);
        using var userInfo = new HttpRequestMessage(HttpMethod.Get, "/t/acme/connect/userinfo");
        userInfo.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        var claims = JsonDocument.Parse(await (await browser.SendAsync(userInfo)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("grace@acme.test", claims.GetProperty("email").GetString());
        Assert.True(claims.GetProperty("email_verified").GetBoolean());

        // The link works once.
        Assert.Contains(ConfirmSignUpModel.InvalidLinkMessage, await browser.GetStringAsync(link));
        Assert.Contains(ConfirmSignUpModel.InvalidLinkMessage, await PageForms.PostAsync(_factory.CreateBrowser(), link, [], "/t/acme/signup"));
        Assert.Single(await UsersAsync("grace@acme.test"));

        var events = await EventsAsync("signup.requested");
        Assert.Equal("succeeded", Assert.Single(events)!["outcome"]!.GetValue<string>());
        var created = Assert.Single(await EventsAsync("user.created"))!;
        Assert.Equal($"user:{user["id"]!.GetValue<string>()}@acme", created["actor"]!.GetValue<string>());
        Assert.Equal("signup", created["details"]!["via"]!.GetValue<string>());
    }

    [Fact]
    public async Task AnAddressWithAnAccount_GetsTheSameAnswer_AndItsOwnerAMail_AndItsPasswordStays()
    {
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        using var browser = _factory.CreateBrowser();

        var known = await PostAsync(browser, "/t/acme/signup", "ada@acme.test", "another long passphrase here");
        var unknown = await PostAsync(browser, "/t/acme/signup", "bob@acme.test", "another long passphrase here");

        Assert.Equal(PageForms.Strip(unknown).Replace("bob@acme.test", "ADDRESS"), PageForms.Strip(known).Replace("ada@acme.test", "ADDRESS"));
        var mail = await _smtp.MailToAsync("ada@acme.test");
        Assert.Equal("You already have a ACME account", mail.Subject);
        Assert.Contains("http://localhost/t/acme/forgot-password", mail.TextBody);
        Assert.DoesNotContain("signup/confirm", mail.TextBody);
        await _smtp.MailToAsync("bob@acme.test");

        var page = new SignInPage(_factory.CreateBrowser(), Tenant);
        Assert.True((await page.PostAsync("ada@acme.test", "another long passphrase here")).Refused);
        Assert.True((await page.PostAsync("ada@acme.test", Password)).SignedIn);
        var failed = await EventsAsync("signup.requested", "&outcome=failed");
        Assert.Equal("existing_account", Assert.Single(failed)!["details"]!["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task AStrangersSignUpOfYourAddress_CannotBeConfirmedWithoutThePasswordItChose()
    {
        // A stranger signs the address up with their own password; then its owner signs up.
        const string StrangersPassword = "a stranger's long passphrase";
        using var stranger = _factory.CreateBrowser();
        using var owner = _factory.CreateBrowser();
        await PostAsync(stranger, "/t/acme/signup", "grace@acme.test", StrangersPassword);
        await PostAsync(owner, "/t/acme/signup", "grace@acme.test", Password);
        await Eventually.TrueAsync(() => _smtp.Messages.Count(m => m.To.Mailboxes.Any(b => b.Address == "grace@acme.test")) == 2);
        var links = _smtp.Messages.Select(m => SmtpCapture.LinkIn(m, "/signup/confirm")).ToList();

        // The owner opens the stranger's link first, with her password: no account, and the link said why.
        var refused = await PageForms.PostAsync(owner, links[0], new() { ["Password"] = Password });
        Assert.Contains(ConfirmSignUpModel.WrongPasswordMessage, WebUtility.HtmlDecode(refused));
        Assert.Empty(await UsersAsync("grace@acme.test"));

        // Her own link makes her account, with her password; the stranger's password opens nothing.
        Assert.Contains("Your account is ready.", await PageForms.PostAsync(owner, links[1], new() { ["Password"] = Password }));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("grace@acme.test", Password)).SignedIn);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("grace@acme.test", StrangersPassword)).Refused);
    }

    [Fact]
    public async Task FiveWrongPasswords_EndALink()
    {
        using var browser = _factory.CreateBrowser();
        await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password);
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("grace@acme.test"), "/signup/confirm");

        for (var i = 0; i < IdentityService.Users.SignUps.WrongPasswordsPerLink; i++)
        {
            Assert.Contains(ConfirmSignUpModel.WrongPasswordMessage, WebUtility.HtmlDecode(await PageForms.PostAsync(browser, link, new() { ["Password"] = $"guess number {i} here" })));
        }

        Assert.Contains(ConfirmSignUpModel.InvalidLinkMessage, await PageForms.PostAsync(browser, link, new() { ["Password"] = Password }, "/t/acme/signup"));
        Assert.Empty(await UsersAsync("grace@acme.test"));
    }

    [Theory]
    [InlineData("ada@acme.test.")]
    [InlineData("ada@[127.0.0.1]")]
    [InlineData("\"ada\"@acme.test")]
    public async Task AnAddressWrittenAnotherWay_IsNoAddress(string email)
    {
        // The same mailbox under another spelling would be a second account beside ada@acme.test.
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        using var browser = _factory.CreateBrowser();

        Assert.Contains("Enter a valid email address.", await PostAsync(browser, "/t/acme/signup", email, "a stranger's long passphrase"));
        await Task.Delay(300);
        Assert.Empty(_smtp.Messages);
        var admin = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/users", new { email, password = Password });
        Assert.Equal(HttpStatusCode.BadRequest, admin.StatusCode);
    }

    [Fact]
    public async Task ALink_MakesNoAccount_OnceTheTenantStoppedSignUps()
    {
        using var browser = _factory.CreateBrowser();
        await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password);
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("grace@acme.test"), "/signup/confirm");
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { enabled = false } }, HttpStatusCode.OK);

        Assert.Contains(ConfirmSignUpModel.ClosedMessage, WebUtility.HtmlDecode(await PageForms.PostAsync(browser, link, new() { ["Password"] = Password })));
        Assert.Empty(await UsersAsync("grace@acme.test"));
    }

    [Fact]
    public async Task AnAccountMadeMeanwhile_SpendsTheLink_WithoutASecondAccount()
    {
        using var browser = _factory.CreateBrowser();
        await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password);
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("grace@acme.test"), "/signup/confirm");
        await _factory.CreateUserAsync(Tenant, "grace@acme.test", "an admin's long passphrase");

        Assert.Contains("This address already has an account.", await PageForms.PostAsync(browser, link, new() { ["Password"] = Password }));
        Assert.Single(await UsersAsync("grace@acme.test"));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("grace@acme.test", Password)).Refused);
    }

    [Fact]
    public async Task SignUp_IsOffUntilATenantOpensIt_AndNeedsMail()
    {
        await _factory.CreateTenantAsync("closed");
        using var browser = _factory.CreateBrowser();
        Assert.DoesNotContain("id=\"signup\"", await browser.GetStringAsync("/t/closed/login"));
        Assert.Contains("Accounts cannot be created here.", await browser.GetStringAsync("/t/closed/signup"));
        Assert.Contains("Accounts cannot be created here.", await PostAsync(browser, "/t/closed/signup", "grace@acme.test", Password, formPage: "/t/closed/login"));
        Assert.Contains("id=\"signup\"", await browser.GetStringAsync("/t/acme/login"));

        // Opened, but no mail server to send the link through: not offered.
        using var withoutMail = new IdentityServiceFactory { Output = output };
        await withoutMail.CreateTenantAsync(Tenant);
        await withoutMail.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { enabled = true } }, HttpStatusCode.OK);
        using var other = withoutMail.CreateBrowser();
        Assert.DoesNotContain("id=\"signup\"", await other.GetStringAsync("/t/acme/login"));
        Assert.Contains("Accounts cannot be created here.", await other.GetStringAsync("/t/acme/signup"));

        await Task.Delay(300);
        Assert.Empty(_smtp.Messages);
    }

    [Fact]
    public async Task WhatIsWrongWithTheForm_IsSaidOnThePage_AndNothingIsSent()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { allowedEmailDomains = new[] { "acme.test" } } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();

        var weak = await PostAsync(browser, "/t/acme/signup", "grace@acme.test", "short");
        var guessable = await PostAsync(browser, "/t/acme/signup", "grace@acme.test", "grace@acme.test1");
        var mistyped = await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password, Password + "!");
        var notAnAddress = await PostAsync(browser, "/t/acme/signup", "grace at acme", Password);
        var otherDomain = await PostAsync(browser, "/t/acme/signup", "grace@elsewhere.test", Password);

        Assert.Contains("at least 8 characters", weak);
        Assert.Contains("too easy to guess", guessable);
        Assert.Contains("The two passwords differ.", mistyped);
        Assert.Contains("Enter a valid email address.", notAnAddress);
        Assert.Contains("Accounts with this email address cannot be created here.", otherDomain);
        Assert.Contains("value=\"grace@elsewhere.test\"", otherDomain);
        Assert.DoesNotContain("Check your email", otherDomain);
        await Task.Delay(300);
        Assert.Empty(_smtp.Messages);
        Assert.Empty(await UsersAsync("grace@acme.test"));
    }

    [Fact]
    public async Task WhereTheTenantAsksIt_TheNameIsRequired_AndKeptOnTheAccount()
    {
        Assert.DoesNotContain("autocomplete=\"name\"", await _factory.CreateBrowser().GetStringAsync("/t/acme/signup"));
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { askName = true } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        Assert.Contains("autocomplete=\"name\"", await browser.GetStringAsync("/t/acme/signup"));

        Assert.Contains("Enter your name.", await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password));
        Assert.Contains("Full name must not hold a control character", await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password, name: "Grace\nHopper"));
        Assert.Contains("Check your email", await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password, name: " Grace Hopper "));
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("grace@acme.test"), "/signup/confirm");
        await PageForms.PostAsync(browser, link, new() { ["Password"] = Password });

        Assert.Equal("Grace Hopper", Assert.Single(await UsersAsync("grace@acme.test"))!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task WhereTheTenantHasTerms_ThePersonAcceptsThem_AndTheAccountKeepsWhichAndWhen()
    {
        const string Terms = "https://acme.example/terms/2026-12";
        Assert.DoesNotContain("accept-terms", await _factory.CreateBrowser().GetStringAsync("/t/acme/signup"));
        var bad = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { terms = new { url = "javascript:alert(1)" } });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("terms.url", await bad.Content.ReadAsStringAsync());
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { terms = new { url = Terms } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        Assert.Contains($"href=\"{Terms}\"", await browser.GetStringAsync("/t/acme/signup"));

        Assert.Contains("Accept the terms of service to create an account.", await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password));
        Assert.Equal(0, await PendingAsync());
        var accepted = await PageForms.PostAsync(browser, "/t/acme/signup", new()
        {
            ["Email"] = "grace@acme.test", ["Password"] = Password, ["ConfirmPassword"] = Password, ["AcceptTerms"] = "true",
        });
        Assert.Contains("Check your email", accepted);
        var asked = _factory.Time.GetUtcNow();

        // The terms change before the link is used: the account keeps the ones the person saw.
        _factory.Time.Advance(TimeSpan.FromMinutes(5));
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { terms = new { url = Terms + "-v2" } }, HttpStatusCode.OK);
        await PageForms.PostAsync(browser, SmtpCapture.LinkIn(await _smtp.MailToAsync("grace@acme.test"), "/signup/confirm"), new() { ["Password"] = Password });

        var user = Assert.Single(await UsersAsync("grace@acme.test"))!;
        Assert.Equal(Terms, user["acceptedTermsUrl"]!.GetValue<string>());
        // When the person accepted them on the page, not when the link was used 5 minutes later.
        Assert.InRange(user["termsAcceptedAt"]!.GetValue<DateTimeOffset>(), asked - TimeSpan.FromSeconds(1), asked);
        var created = Assert.Single(await EventsAsync("user.created"))!;
        Assert.Equal(Terms, created["details"]!["acceptedTerms"]!.GetValue<string>());
    }

    [Fact]
    public async Task TheStrengthMeter_ScoresWhatIsTyped_WithTheAddressAsAWordAGuesserKnows()
    {
        using var browser = _factory.CreateBrowser();
        var token = SignInPage.AntiForgeryToken(await browser.GetStringAsync("/t/acme/signup"));

        async Task<JsonElement> ScoreAsync(string email, string password)
        {
            var response = await browser.PostAsync("/t/acme/signup?handler=strength", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["__RequestVerificationToken"] = token,
                ["Email"] = email,
                ["Password"] = password,
            }));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        }

        var strong = await ScoreAsync("grace@acme.test", Password);
        Assert.True(strong.GetProperty("acceptable").GetBoolean());
        Assert.Equal(2, strong.GetProperty("needed").GetInt32());
        Assert.True((await ScoreAsync("someone@acme.test", "gracehopper1906")).GetProperty("score").GetInt32()
            > (await ScoreAsync("gracehopper1906@acme.test", "gracehopper1906")).GetProperty("score").GetInt32());
    }

    [Fact]
    public async Task TheLink_ExpiresAfterTheTenantsLifetime_AndWorksOnlyAtItsTenant()
    {
        await _factory.CreateTenantAsync("other");
        using var browser = _factory.CreateBrowser();
        await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password);
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("grace@acme.test"), "/signup/confirm");

        Assert.Contains(ConfirmSignUpModel.InvalidLinkMessage, await browser.GetStringAsync(link.Replace("/t/acme/", "/t/other/")));
        _factory.Time.Advance(TimeSpan.FromMinutes(59));
        Assert.Contains("Confirm and create the account", await browser.GetStringAsync(link));
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Contains(ConfirmSignUpModel.InvalidLinkMessage, await PageForms.PostAsync(browser, link, new() { ["Password"] = Password }, "/t/acme/signup"));
        Assert.False((await new SignInPage(_factory.CreateBrowser(), Tenant).PostAsync("grace@acme.test", Password)).SignedIn);

        // A new sign-up of the address clears its expired links; the tenant's erasure clears the rest.
        await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password);
        Assert.Equal(1, await PendingAsync());
        var token = await _factory.ClientCredentialsTokenAsync("system", _factory.AdminClientId, _factory.AdminClientSecret!, "manage");
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme", token: token)).StatusCode);
        Assert.Equal(0, await PendingAsync());
    }

    [Fact]
    public async Task TheSignInPagesProtections_RefuseASignUp_WithoutSayingWhich()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { signInPerIpPerMinute = 2 } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();

        Assert.Contains("Check your email", await PostAsync(browser, "/t/acme/signup", "one@acme.test", Password));
        Assert.Contains("Check your email", await PostAsync(browser, "/t/acme/signup", "two@acme.test", Password));
        Assert.Contains(SignUpModel.RefusedMessage, await PostAsync(browser, "/t/acme/signup", "three@acme.test", Password));

        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { ipRules = new { deny = new[] { "203.0.113.0/24" } } }, HttpStatusCode.OK);
        Assert.Contains(SignUpModel.RefusedMessage, await PostAsync(browser, "/t/acme/signup", "four@acme.test", Password));

        await _smtp.MailToAsync("two@acme.test");
        await Task.Delay(300);
        Assert.Equal(2, _smtp.Messages.Count);
        var reasons = (await EventsAsync("signup.requested", "&outcome=failed")).Select(e => e!["details"]!["reason"]!.GetValue<string>() + "/" + e["details"]!["decidedBy"]!.GetValue<string>());
        Assert.Equal(["ip_denied/CheckIpRules", "rate_limited/EnforceSignInRateLimit"], reasons);
    }

    [Fact]
    public async Task AnAddress_GetsAtMostFiveLinksAnHour()
    {
        using var browser = _factory.CreateBrowser();
        for (var i = 0; i < 7; i++)
        {
            Assert.Contains("Check your email", await PostAsync(browser, "/t/acme/signup", "grace@acme.test", Password));
        }

        await Eventually.TrueAsync(() => _smtp.Messages.Count >= 5);
        await Task.Delay(300);
        Assert.Equal(5, _smtp.Messages.Count);
        Assert.Equal(2, (await EventsAsync("signup.requested", "&outcome=failed")).Count(e => e!["details"]!["reason"]!.GetValue<string>() == "too_many_links"));
    }

    [Fact]
    public async Task PromptCreate_OpensTheSignUpPage_WhereTheTenantTakesSignUps()
    {
        using var browser = _factory.CreateBrowser();
        var discovery = JsonDocument.Parse(await browser.GetStringAsync("/t/acme/.well-known/openid-configuration")).RootElement;
        Assert.Contains("create", discovery.GetProperty("prompt_values_supported").EnumerateArray().Select(v => v.GetString()));
        var flow = new OidcFlow(browser, Tenant, "web");
        flow.Extra["prompt"] = "create";

        var location = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        Assert.Equal("/t/acme/signup", location.AbsolutePath);
        var returnUrl = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(location.Query)["ReturnUrl"].ToString();
        Assert.StartsWith("/t/acme/connect/authorize?", returnUrl);
        Assert.DoesNotContain("prompt", returnUrl);
        flow.Extra["login_hint"] = "grace@acme.test";
        var hinted = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        Assert.Contains("value=\"grace@acme.test\"", await browser.GetStringAsync(hinted.PathAndQuery));

        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { enabled = false } }, HttpStatusCode.OK);
        Assert.Equal("/t/acme/login", OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl())).AbsolutePath);
    }

    [Fact]
    public async Task PromptCreate_InAPushedRequest_OpensTheSignUpPage_UntilTheBrowserSignsInAfterThePush()
    {
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        using var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, Tenant).PostAsync("ada@acme.test", Password)).SignedIn);
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        var flow = new OidcFlow(browser, Tenant, "web") { Pushed = true };
        flow.Extra["prompt"] = "create";
        var start = await flow.StartAsync();

        // Signed in before the push: the request still opens the sign-up page, and comes back by its request_uri.
        var signUp = OidcFlow.Location(await browser.GetAsync(start));
        Assert.Equal("/t/acme/signup", signUp.AbsolutePath);
        Assert.Equal(start, Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(signUp.Query)["ReturnUrl"].ToString());

        // A sign-in since the push (as after signing up and confirming) meets the prompt: the code comes, no loop.
        _factory.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.True((await new SignInPage(browser, Tenant).PostAsync("ada@acme.test", Password)).SignedIn);
        var code = OidcFlow.Location(await browser.GetAsync(start));
        Assert.StartsWith(OidcFlow.RedirectUri, code.ToString());
        Assert.Contains("code=", code.Query);
    }

    [Fact]
    public async Task ThePolicy_RefusesABadSignUpSection_NamingTheField()
    {
        var tooShort = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { linkLifetimeMinutes = 4 } });
        var upperCase = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { allowedEmailDomains = new[] { "acme.test", "Acme.example" } } });

        Assert.Equal(HttpStatusCode.BadRequest, tooShort.StatusCode);
        Assert.Contains("signUp.linkLifetimeMinutes", await tooShort.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, upperCase.StatusCode);
        Assert.Contains("signUp.allowedEmailDomains[1]", await upperCase.Content.ReadAsStringAsync());
        var policy = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        Assert.Equal(60, policy["signUp"]!["linkLifetimeMinutes"]!.GetValue<int>());
    }

    private static Task<string> PostAsync(
        HttpClient browser, string page, string email, string password, string? confirmation = null, string? formPage = null, string? name = null) =>
        PageForms.PostAsync(browser, page, new()
        {
            ["Email"] = email,
            ["Name"] = name ?? "",
            ["Password"] = password,
            ["ConfirmPassword"] = confirmation ?? password,
            ["ReturnUrl"] = Uri.UnescapeDataString(page.Contains("ReturnUrl=") ? page[(page.IndexOf("ReturnUrl=") + 10)..] : ""),
        }, formPage);

    private async Task<System.Text.Json.Nodes.JsonArray> UsersAsync(string email) =>
        (await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users?email={Uri.EscapeDataString(email)}", expected: HttpStatusCode.OK))["items"]!.AsArray();

    private async Task<System.Text.Json.Nodes.JsonArray> EventsAsync(string type, string filter = "") =>
        (await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/audit-events?type={type}{filter}", expected: HttpStatusCode.OK))["items"]!.AsArray();

    private async Task<int> PendingAsync()
    {
        using var scope = _factory.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
        return await db.Set<IdentityService.Users.PendingSignUp>().IgnoreQueryFilters().CountAsync(p => p.TenantId == Tenant);
    }

    /// <summary>The <c>href</c> of the link with this id, as the page writes it.</summary>
    private static string Href(string html, string id) => Regex.Match(html, $"href=\"([^\"]*)\" id=\"{id}\"").Groups[1].Value;
}
