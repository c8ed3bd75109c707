using System.Net;
using System.Text.Json.Nodes;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Protection;

/// <summary>
/// Two instances of the service sharing one Redis and one database (PostgreSQL when <c>TEST_POSTGRES</c> is set,
/// else one SQLite file) behave as one: lockouts, IP blocks, policies and tenants.
/// </summary>
public sealed class SharedStateTests : IAsyncLifetime
{
    private const string Password = "correct horse battery staple";
    private readonly string _prefix = TestRedis.NewPrefix();
    private readonly IdentityServiceFactory _first;
    private readonly IdentityServiceFactory _second;
    private string _userId = "";

    public SharedStateTests(ITestOutputHelper output)
    {
        _first = new IdentityServiceFactory { Output = output }.WithRedis(_prefix);
        _second = new IdentityServiceFactory(_first) { Output = output }.WithRedis(_prefix);
    }

    public async Task InitializeAsync()
    {
        await _first.CreateTenantAsync("acme");
        _userId = await _first.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public async Task DisposeAsync()
    {
        _second.Dispose();
        _first.Dispose();
        await TestRedis.FlushAsync(_prefix);
    }

    [Fact]
    public async Task AClientAssertionUsedAtOneReplica_IsRefusedAtTheOther()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        await _first.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "backend", grantTypes = new[] { "client_credentials" }, jwks = new { keys = new[] { ClientAssertion.PublicJwk(key, "k1") } },
        });
        var assertion = ClientAssertion.Create(ClientAssertion.Es256(key, "k1"), "backend", "http://localhost/t/acme", _first.Time.GetUtcNow().UtcDateTime, TimeSpan.FromMinutes(1));
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_assertion_type"] = ClientAssertion.Type, ["client_assertion"] = assertion };

        using var atFirst = _first.CreateApi();
        using var atSecond = _second.CreateApi();
        Assert.Equal(HttpStatusCode.OK, (await atFirst.PostAsync("/t/acme/connect/token", new FormUrlEncodedContent(form))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await atSecond.PostAsync("/t/acme/connect/token", new FormUrlEncodedContent(form))).StatusCode);
    }

    [Fact]
    public async Task FailuresCountedOnBothReplicas_LockTheAccountOnEither_AndAnUnlockOnOneEndsItOnBoth()
    {
        using var atFirst = new ParallelSignInPage(_first, "acme", "198.51.100.31");
        using var atSecond = new ParallelSignInPage(_second, "acme", "198.51.100.32");
        for (var i = 0; i < 5; i++)
        {
            Assert.False(await atFirst.SignInAsync("ada@acme.test", "wrong at first"));
            Assert.False(await atSecond.SignInAsync("ada@acme.test", "wrong at second"));
        }

        // The tenth failure was counted at the second: the right password at the first is refused, unchecked.
        Assert.False(await atFirst.SignInAsync("ada@acme.test", Password));
        var reasons = await ParallelSignInPage.LoggedReasonsAsync(_first, "acme");
        Assert.Equal(10, reasons.Count(r => r == "invalid_credentials"));
        Assert.Equal(1, reasons.Count(r => r == "account_locked"));

        var unlocked = await _second.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{_userId}/unlock");
        Assert.Equal(HttpStatusCode.NoContent, unlocked.StatusCode);
        Assert.True(await atFirst.SignInAsync("ada@acme.test", Password));
    }

    [Fact]
    public async Task AnIpBlockedOnOneReplica_IsRefusedAndListedOnTheOther_AndLiftedThere()
    {
        const string ip = "198.51.100.40";
        using var atFirst = new ParallelSignInPage(_first, "acme", ip);
        using var atSecond = new ParallelSignInPage(_second, "acme", ip);
        for (var i = 0; i < 5; i++)
        {
            Assert.False(await atFirst.SignInAsync($"nobody{i}@acme.test", "whatever"));
        }

        Assert.False(await atSecond.SignInAsync("ada@acme.test", Password));
        Assert.Equal("ip_blocked", (await ParallelSignInPage.LoggedReasonsAsync(_second, "acme")).Last());

        var listed = await _second.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/ip-blocks", expected: HttpStatusCode.OK);
        var block = Assert.Single(listed["items"]!.AsArray())!;
        Assert.Equal(ip, block["ip"]!.GetValue<string>());
        Assert.Equal("unknown_user_failures", block["reason"]!.GetValue<string>());
        var until = block["until"]!.GetValue<DateTimeOffset>();
        Assert.InRange(until, _second.Time.GetUtcNow().AddMinutes(29), _second.Time.GetUtcNow().AddMinutes(30));

        var lifted = await _second.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/ip-blocks/{ip}");
        Assert.Equal(HttpStatusCode.NoContent, lifted.StatusCode);
        Assert.Empty((await _first.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/ip-blocks", expected: HttpStatusCode.OK))["items"]!.AsArray());
        Assert.True(await atFirst.SignInAsync("ada@acme.test", Password));
    }

    [Fact]
    public async Task APolicyChangedOnOneReplica_GovernsTheOthersNextSignIn()
    {
        using (var before = new ParallelSignInPage(_second, "acme", "198.51.100.50"))
        {
            Assert.True(await before.SignInAsync("ada@acme.test", Password));
        }

        // The second caches the policy; it learns of the change from Redis, not from the cache's expiry.
        var changed = ReceivedAt(_second, PolicyStore.Channel);
        await _first.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { lockout = new { maxFailedAttempts = 3 } }, HttpStatusCode.OK);
        Assert.Equal("acme", await changed.WaitAsync(TimeSpan.FromSeconds(10)));

        using var atSecond = new ParallelSignInPage(_second, "acme", "198.51.100.50");
        for (var i = 0; i < 3; i++)
        {
            Assert.False(await atSecond.SignInAsync("ada@acme.test", "wrong"));
        }

        Assert.False(await atSecond.SignInAsync("ada@acme.test", Password));
        Assert.Equal("account_locked", (await ParallelSignInPage.LoggedReasonsAsync(_second, "acme")).Last());
    }

    [Fact]
    public async Task ATenantDeletedOnOneReplica_StopsResolvingOnTheOtherAtOnce()
    {
        using var browser = _second.CreateBrowser();
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/t/acme/login")).StatusCode);

        var forgotten = ReceivedAt(_second, TenantDirectory.Channel);
        var deleted = await _first.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal("acme", await forgotten.WaitAsync(TimeSpan.FromSeconds(10)));

        Assert.Equal(HttpStatusCode.NotFound, (await browser.GetAsync("/t/acme/login")).StatusCode);
    }

    [Fact]
    public async Task ErasingATenant_LeavesNoneOfItsAddressesOrAccountsInRedis()
    {
        using var page = new ParallelSignInPage(_first, "acme", "198.51.100.41");
        for (var i = 0; i < 3; i++)
        {
            Assert.False(await page.SignInAsync("ada@acme.test", "wrong"));
            Assert.False(await page.SignInAsync($"nobody{i}@acme.test", "wrong"));
        }

        var before = await TenantKeysAsync("acme");
        Assert.Contains(before, k => k.Contains("198.51.100.41", StringComparison.Ordinal));
        Assert.Contains(before, k => k.Contains(_userId, StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.NoContent, (await _first.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme")).StatusCode);

        Assert.Empty(await TenantKeysAsync("acme"));
    }

    private async Task<List<string>> TenantKeysAsync(string tenant)
    {
        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(TestRedis.Configuration);
        var keys = new List<string>();
        foreach (var endpoint in redis.GetEndPoints())
        {
            await foreach (var key in redis.GetServer(endpoint).KeysAsync(pattern: $"{_prefix}t:{tenant}:*"))
            {
                keys.Add(key.ToString());
            }
        }

        return keys;
    }

    /// <summary>
    /// A message on a channel at a replica. Subscribed after the replica's own caches, so it completes once they
    /// have handled it (a channel's handlers run in the order they subscribed).
    /// </summary>
    private static Task<string> ReceivedAt(IdentityServiceFactory replica, string channel)
    {
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        replica.Services.GetRequiredService<IInvalidationBus>().Subscribe(channel, m => received.TrySetResult(m));
        return received.Task;
    }
}
