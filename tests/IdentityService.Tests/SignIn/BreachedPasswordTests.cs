using System.Net;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using IdentityService.Users;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A tenant refuses new passwords known from data breaches (<c>passwords.rejectBreached</c>), asking a local stand-in
/// of Have I Been Pwned's range API: only five characters of the password's SHA-1 leave the service.
/// </summary>
public sealed class BreachedPasswordTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Users = "/api/v1/tenants/acme/users";
    private const string Breached = "correct horse battery staple";
    private const string Fresh = "plum kettle orbit sextant";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private FakePwnedPasswords _pwned = null!;
    private IdentityServiceFactory _factory = null!;

    public async Task InitializeAsync()
    {
        _pwned = await FakePwnedPasswords.StartAsync();
        _pwned.Breached(Breached, 3_000);
        _pwned.Breached(Fresh, 0);
        _factory = new IdentityServiceFactory { Output = output, Settings = { ["BreachedPasswords:BaseUrl"] = _pwned.Address } };
        _factory.SendMailTo(_smtp);
        await _factory.CreateTenantAsync("acme");
    }

    public async Task DisposeAsync()
    {
        await _pwned.DisposeAsync();
        await _smtp.DisposeAsync();
    }

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task Off_ByDefault_AndThenNothingIsAsked()
    {
        var policy = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);

        Assert.False(policy["passwords"]!["rejectBreached"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync(Breached)).StatusCode);
        Assert.Empty(_pwned.Requests);
    }

    [Fact]
    public async Task On_ABreachedPasswordIsRefused_AndOnlyAHashPrefixIsSent()
    {
        await TurnOnAsync();

        var refused = await CreateAsync(Breached);
        var text = await refused.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains(BreachedPasswordValidator.Message, JsonNode.Parse(text)!["errors"]!["password"]!.ToJsonString());

        // Listed with a count of 0 (as padding is): not a breach. Asked once per password, however often it is validated.
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync(Fresh)).StatusCode);
        var requests = _pwned.Requests.ToList();
        Assert.Equal(["/range/" + FakePwnedPasswords.Sha1(Breached)[..5], "/range/" + FakePwnedPasswords.Sha1(Fresh)[..5]], requests.Select(r => r.Path));
        Assert.All(requests, r => Assert.True(r.Padded));
    }

    [Fact]
    public async Task APasswordFailingTheOtherRules_IsNotSentAtAll()
    {
        await TurnOnAsync();

        Assert.Equal(HttpStatusCode.BadRequest, (await CreateAsync("password1")).StatusCode);
        Assert.Empty(_pwned.Requests);
    }

    [Fact]
    public async Task APersonChangingTheirPassword_IsToldOnThePage()
    {
        await TurnOnAsync();
        await _factory.CreateUserAsync("acme", "ada@acme.test", "an old but unbreached phrase");
        var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync("ada@acme.test", "an old but unbreached phrase")).SignedIn);

        var page = await PageForms.PostAsync(browser, "/t/acme/account/password", new()
        {
            ["CurrentPassword"] = "an old but unbreached phrase",
            ["NewPassword"] = Breached,
            ["ConfirmPassword"] = Breached,
        });

        Assert.Contains(System.Net.WebUtility.HtmlEncode(BreachedPasswordValidator.Message), page);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", "an old but unbreached phrase")).SignedIn);
    }

    [Fact]
    public async Task WhenTheServiceCannotBeAsked_ThePasswordIsTakenUnchecked()
    {
        await TurnOnAsync();
        _pwned.FailWith = 503;

        Assert.Equal(HttpStatusCode.Created, (await CreateAsync(Breached)).StatusCode);
        Assert.Single(_pwned.Requests);
    }

    [Fact]
    public async Task AtSignIn_ABreachedPasswordDoesNotSignIn_AndItsOwnerIsSentALink()
    {
        // The account's password was set before the tenant checked; then it turns the check at sign-in on.
        await _factory.CreateUserAsync("acme", "ada@acme.test", Breached);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { passwords = new { checkBreachedAtSignIn = true } }, HttpStatusCode.OK);

        // A wrong password is the one refusal, and is not asked about.
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", "not the password at all")).Refused);
        Assert.Empty(_pwned.Requests);

        var answer = await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Breached);
        Assert.False(answer.SignedIn);
        Assert.Contains(System.Net.WebUtility.HtmlEncode(IdentityService.SignIn.Pages.LoginModel.BreachedMessage), answer.Html);
        var audit = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=signin.failed", expected: HttpStatusCode.OK);
        Assert.Equal("password_breached", audit["items"]![0]!["details"]!["reason"]!.GetValue<string>());

        // The link mailed sets a new password, which signs in; a clean password is asked about once a day.
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("ada@acme.test"), "/reset-password");
        var browser = _factory.CreateBrowser();
        async Task<string> ResetAsync(string password) => await (await browser.PostAsync(link, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["NewPassword"] = password,
            ["ConfirmPassword"] = password,
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(await browser.GetStringAsync(link)),
        }))).Content.ReadAsStringAsync();
        Assert.Contains(System.Net.WebUtility.HtmlEncode(BreachedPasswordValidator.Message), await ResetAsync(Breached));
        Assert.DoesNotContain(System.Net.WebUtility.HtmlEncode(BreachedPasswordValidator.Message), await ResetAsync(Fresh));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Fresh)).SignedIn);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Fresh)).SignedIn);
        var asked = _pwned.Requests.Count;
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Fresh)).SignedIn);
        Assert.Equal(asked, _pwned.Requests.Count);
        _factory.Time.Advance(TimeSpan.FromDays(1));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Fresh)).SignedIn);
        Assert.Equal(asked + 1, _pwned.Requests.Count);
    }

    [Fact]
    public async Task AtSignIn_WhenTheServiceCannotBeAsked_TheSignInGoesOn()
    {
        await _factory.CreateUserAsync("acme", "ada@acme.test", Breached);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { passwords = new { checkBreachedAtSignIn = true } }, HttpStatusCode.OK);
        _pwned.FailWith = 500;

        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Breached)).SignedIn);
    }

    private Task TurnOnAsync() =>
        _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { passwords = new { rejectBreached = true } }, HttpStatusCode.OK);

    private Task<HttpResponseMessage> CreateAsync(string password) =>
        _factory.ManageAsync(HttpMethod.Post, Users, new { email = "ada@acme.test", password });
}
