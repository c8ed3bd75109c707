using System.Net;
using IdentityService.Audit;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A signed-in person sees their account's recent security activity on <c>/account/activity</c>: its sign-ins,
/// refused ones with where they came from, and changes to it; never another account's.
/// </summary>
public sealed class ActivityTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
        await _factory.CreateUserAsync("acme", "grace@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ThePage_ShowsTheAccountsSignInsAndChanges_NewestFirst_AndNoOtherAccounts()
    {
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", "not the password", "198.51.100.7")).Refused);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("grace@acme.test", "not the password", "192.0.2.99")).Refused);
        using var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync("ada@acme.test", Password, headers: new Dictionary<string, string> { ["User-Agent"] = Chrome })).SignedIn);
        await PageForms.PostAsync(browser, "/t/acme/account/security?handler=signoutothers", [], "/t/acme/account/security");

        var page = await browser.GetStringAsync("/t/acme/account/activity");

        var rows = System.Text.RegularExpressions.Regex.Matches(page, "<tr class=\"(succeeded|failed)\">.*?</tr>", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Select(m => m.Value).ToList();
        Assert.Equal(4, rows.Count);
        Assert.Contains("Signed out everywhere", rows[0]);
        Assert.Contains("Signed in", rows[1]);
        Assert.Contains("Chrome on Windows", rows[1]);
        Assert.Contains("203.0.113.10", rows[1]);
        Assert.Contains("Sign-in refused", rows[2]);
        Assert.Contains("198.51.100.7", rows[2]);
        Assert.StartsWith("<tr class=\"failed\">", rows[2]);
        Assert.Contains("Account created", rows[3]);
        Assert.DoesNotContain("192.0.2.99", page);
    }

    [Fact]
    public async Task ThePage_NeedsASignIn()
    {
        var response = await _factory.CreateBrowser().GetAsync("/t/acme/account/activity");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Contains("/t/acme/login", OidcFlow.Location(response).ToString());
    }

    [Theory]
    [InlineData(Chrome, "Chrome on Windows")]
    [InlineData("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Safari on iPhone")]
    [InlineData("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux")]
    [InlineData("curl/8.5.0", "curl/8.5.0")]
    public void ABrowser_IsNamedAsAPersonKnowsIt(string userAgent, string shown) => Assert.Equal(shown, UserAgents.Describe(userAgent));
}
