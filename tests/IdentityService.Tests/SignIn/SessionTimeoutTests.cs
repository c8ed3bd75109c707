using System.Net;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// How long a sign-in (the SSO session) lasts: its tenant's lifetime from the sign-in, whatever its use, and, where
/// the tenant sets one, an idle timeout that ends a session left unused.
/// </summary>
public sealed class SessionTimeoutTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string Page = "/t/acme/account/security";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ASession_EndsAtItsLifetime_HoweverOftenItIsUsed()
    {
        await SetAsync(new { sessionLifetimeSeconds = 3600, sessionIdleTimeoutSeconds = 900 });
        using var browser = await SignedInAsync();

        // Used every ten minutes: the idle timeout never ends it, its lifetime does.
        for (var minutes = 10; minutes <= 50; minutes += 10)
        {
            _factory.Time.Advance(TimeSpan.FromMinutes(10));
            Assert.True(await SignedInAsync(browser), $"Signed out after {minutes} minutes of use.");
        }

        _factory.Time.Advance(TimeSpan.FromMinutes(11));
        Assert.False(await SignedInAsync(browser));
    }

    [Fact]
    public async Task ASessionLeftUnused_EndsAfterTheIdleTimeout()
    {
        var settings = await SetAsync(new { sessionIdleTimeoutSeconds = 900 });
        Assert.Equal(900, settings["settings"]!["sessionIdleTimeoutSeconds"]!.GetValue<int>());
        using var used = await SignedInAsync();
        using var idle = await SignedInAsync();

        _factory.Time.Advance(TimeSpan.FromMinutes(10));
        Assert.True(await SignedInAsync(used));
        _factory.Time.Advance(TimeSpan.FromMinutes(10));
        Assert.True(await SignedInAsync(used));
        Assert.False(await SignedInAsync(idle));
        // Ended for good: an app asking without a prompt is told a sign-in is needed.
        Assert.False(await SignedInAsync(idle));
        await _factory.CreateWebClientAsync("acme");
        var flow = new OidcFlow(idle, "acme", "web");
        flow.Extra["prompt"] = "none";
        Assert.Contains("error=login_required", OidcFlow.Location(await idle.GetAsync(flow.AuthorizeUrl())).Query);
        var active = new OidcFlow(used, "acme", "web");
        active.Extra["prompt"] = "none";
        Assert.Contains("code=", OidcFlow.Location(await used.GetAsync(active.AuthorizeUrl())).Query);
    }

    [Fact]
    public async Task WithoutAnIdleTimeout_ASessionLastsItsLifetime_AndNoLonger()
    {
        using var browser = await SignedInAsync();

        _factory.Time.Advance(TimeSpan.FromHours(7.9));
        Assert.True(await SignedInAsync(browser));
        _factory.Time.Advance(TimeSpan.FromHours(0.2));
        Assert.False(await SignedInAsync(browser));
    }

    [Theory]
    [InlineData(30)]
    [InlineData(86_401)]
    [InlineData(-1)]
    public async Task AnIdleTimeoutOutOfRange_Is400(int seconds)
    {
        var response = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { settings = new { sessionIdleTimeoutSeconds = seconds } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]!["settings.sessionIdleTimeoutSeconds"]);
    }

    private Task<JsonObject> SetAsync(object settings) =>
        _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { settings }, HttpStatusCode.OK);

    private async Task<HttpClient> SignedInAsync()
    {
        var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        return browser;
    }

    private static async Task<bool> SignedInAsync(HttpClient browser) => (await browser.GetAsync(Page)).StatusCode == HttpStatusCode.OK;
}
