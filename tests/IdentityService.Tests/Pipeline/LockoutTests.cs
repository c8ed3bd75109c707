using System.Net;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Pipeline;

/// <summary>10 failed passwords on a known account lock it for 10 minutes (tenant-tunable), counted atomically.</summary>
public sealed class LockoutTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _userId = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TenthFailure_LocksForTenMinutes_EvenTheRightPasswordFails_ThenTheLockEnds()
    {
        using var browser = _factory.CreateBrowser();
        var page = new SignInPage(browser, "acme");
        for (var i = 0; i < 10; i++)
        {
            Assert.True((await page.PostAsync("ada@acme.test", "wrong password " + i)).Refused);
        }

        var locked = await page.PostAsync("ada@acme.test", Password);
        Assert.True(locked.Refused, "a right password during the lockout fails with the same message");

        _factory.Time.Advance(TimeSpan.FromMinutes(9));
        Assert.True((await page.PostAsync("ada@acme.test", Password)).Refused);

        _factory.Time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        Assert.True((await page.PostAsync("ada@acme.test", Password)).SignedIn);

        var events = await _factory.SignInEventsAsync("acme");
        Assert.Equal(10, events.Count(e => e.Reason == "invalid_credentials"));
        Assert.Equal(2, events.Count(e => e.Reason == "account_locked"));
        Assert.Equal("succeeded", events[^1].Outcome);
    }

    [Fact]
    public async Task SuccessfulSignIn_ResetsTheCount()
    {
        using var browser = _factory.CreateBrowser();
        var page = new SignInPage(browser, "acme");
        for (var i = 0; i < 9; i++)
        {
            await page.PostAsync("ada@acme.test", "wrong");
        }

        Assert.True((await page.PostAsync("ada@acme.test", Password)).SignedIn);
        for (var i = 0; i < 9; i++)
        {
            await page.PostAsync("ada@acme.test", "wrong");
        }

        Assert.True((await page.PostAsync("ada@acme.test", Password)).SignedIn);
    }

    [Fact]
    public async Task TenantPolicy_TunesTheThresholdAndDuration_AndAnAdminCanUnlock()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { lockout = new { maxFailedAttempts = 3, lockoutMinutes = 60 } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        var page = new SignInPage(browser, "acme");
        for (var i = 0; i < 3; i++)
        {
            await page.PostAsync("ada@acme.test", "wrong");
        }

        _factory.Time.Advance(TimeSpan.FromMinutes(30));
        Assert.True((await page.PostAsync("ada@acme.test", Password)).Refused);

        var unlock = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{_userId}/unlock");
        Assert.Equal(HttpStatusCode.NoContent, unlock.StatusCode);
        Assert.True((await page.PostAsync("ada@acme.test", Password)).SignedIn);
    }

    [Fact]
    public async Task SmartMode_AnAttackersFailures_LockOnlyUnfamiliarDevices()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { lockout = new { mode = "smart" } }, HttpStatusCode.OK);
        using var owner = _factory.CreateBrowser();
        var ownerPage = new SignInPage(owner, "acme");
        Assert.True((await ownerPage.PostAsync("ada@acme.test", Password)).SignedIn);

        using var attacker = _factory.CreateBrowser();
        var attackerPage = new SignInPage(attacker, "acme");
        for (var i = 0; i < 12; i++)
        {
            await attackerPage.PostAsync("ada@acme.test", "guess " + i, ip: "198.51.100.66");
        }

        // The owner's browser carries its device cookie: it is familiar, and not locked out.
        Assert.True((await ownerPage.PostAsync("ada@acme.test", Password)).SignedIn);

        // A browser the account never used is locked out, even with the right password.
        using var newLaptop = _factory.CreateBrowser();
        Assert.True((await new SignInPage(newLaptop, "acme").PostAsync("ada@acme.test", Password)).Refused);
    }

    [Fact]
    public async Task PlainMode_TheAttackersFailures_LockTheOwnerOutToo()
    {
        using var owner = _factory.CreateBrowser();
        var ownerPage = new SignInPage(owner, "acme");
        Assert.True((await ownerPage.PostAsync("ada@acme.test", Password)).SignedIn);

        using var attacker = _factory.CreateBrowser();
        for (var i = 0; i < 10; i++)
        {
            await new SignInPage(attacker, "acme").PostAsync("ada@acme.test", "guess " + i, ip: "198.51.100.66");
        }

        Assert.True((await ownerPage.PostAsync("ada@acme.test", Password)).Refused);
    }
}
