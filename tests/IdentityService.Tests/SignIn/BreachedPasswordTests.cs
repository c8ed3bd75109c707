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
    private FakePwnedPasswords _pwned = null!;
    private IdentityServiceFactory _factory = null!;

    public async Task InitializeAsync()
    {
        _pwned = await FakePwnedPasswords.StartAsync();
        _pwned.Breached(Breached, 3_000);
        _pwned.Breached(Fresh, 0);
        _factory = new IdentityServiceFactory { Output = output, Settings = { ["BreachedPasswords:BaseUrl"] = _pwned.Address } };
        await _factory.CreateTenantAsync("acme");
    }

    public async Task DisposeAsync() => await _pwned.DisposeAsync();

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

    private Task TurnOnAsync() =>
        _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { passwords = new { rejectBreached = true } }, HttpStatusCode.OK);

    private Task<HttpResponseMessage> CreateAsync(string password) =>
        _factory.ManageAsync(HttpMethod.Post, Users, new { email = "ada@acme.test", password });
}
