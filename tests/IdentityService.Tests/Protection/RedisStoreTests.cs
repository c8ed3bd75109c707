using IdentityService.Protection;
using IdentityService.Protection.Redis;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace IdentityService.Tests.Protection;

/// <summary>The Redis stores against a real Redis, with the service's clock faked: windows and expiries follow it.</summary>
public sealed class RedisStoreTests : IAsyncLifetime
{
    private readonly string _prefix = TestRedis.NewPrefix();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 23, 9, 0, 0, TimeSpan.Zero));
    private ConnectionMultiplexer _redis = null!;
    private RedisProtectionStore _store = null!;
    private RedisLockoutStore _lockouts = null!;

    public async Task InitializeAsync()
    {
        _redis = await ConnectionMultiplexer.ConnectAsync(TestRedis.Configuration);
        var keys = new RedisKeys(_prefix);
        _store = new RedisProtectionStore(_redis, keys, _time);
        _lockouts = new RedisLockoutStore(_redis, keys, _time);
    }

    public async Task DisposeAsync()
    {
        await TestRedis.FlushAsync(_prefix);
        await _redis.DisposeAsync();
    }

    [Fact]
    public Task Counter_CountsWithinItsWindow_AndStartsAgainInTheNextOne() => CountsWithinItsWindowAsync(_store);

    [Fact]
    public Task InMemoryStore_Counter_CountsWithinItsWindow_AndStartsAgainInTheNextOne() => CountsWithinItsWindowAsync(new InMemoryProtectionStore(_time));

    [Fact]
    public async Task InMemoryStore_Counter_CountsEveryOneOfManyConcurrentIncrements_AcrossWindowsAndSweeps()
    {
        var store = new InMemoryProtectionStore(_time);
        var window = TimeSpan.FromSeconds(1);
        for (var round = 0; round < 5; round++)
        {
            // Many threads on one key, and on keys whose windows close meanwhile (each sweep removes those).
            var counts = await Task.WhenAll(Enumerable.Range(0, 2_000).Select(i => Task.Run(() =>
                store.IncrementAsync("acme", i % 2 == 0 ? "rl:tenant" : $"rl:token:client{i}", window))));

            Assert.Equal(Enumerable.Range(1, 1_000).Select(n => (long)n), counts.Where((_, i) => i % 2 == 0).Order());
            _time.Advance(window);
        }
    }

    [Fact]
    public Task UseOnce_RefusesAValueWhileItsFirstUseHolds_ThenTakesItAgain() => UsesOnceAsync(_store);

    [Fact]
    public Task InMemoryStore_UseOnce_RefusesAValueWhileItsFirstUseHolds_ThenTakesItAgain() => UsesOnceAsync(new InMemoryProtectionStore(_time));

    [Fact]
    public async Task InMemoryStore_UseOnce_OneOfManyConcurrentUsesWins()
    {
        var store = new InMemoryProtectionStore(_time);
        var until = _time.GetUtcNow().AddMinutes(1);

        var results = await Task.WhenAll(Enumerable.Range(0, 1_000).Select(_ => Task.Run(() => store.UseOnceAsync("acme", "assertion:1", until))));

        Assert.Single(results, r => r);
    }

    private async Task UsesOnceAsync(IProtectionStore store)
    {
        var until = _time.GetUtcNow().AddMinutes(6);
        Assert.True(await store.UseOnceAsync("acme", "assertion:a", until));
        Assert.False(await store.UseOnceAsync("acme", "assertion:a", until));
        Assert.True(await store.UseOnceAsync("acme", "assertion:b", until));
        Assert.True(await store.UseOnceAsync("other", "assertion:a", until));

        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.False(await store.UseOnceAsync("acme", "assertion:a", until));
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(await store.UseOnceAsync("acme", "assertion:a", until.AddMinutes(6)));
        Assert.False(await store.UseOnceAsync("acme", "assertion:a", until.AddMinutes(6)));
        await store.ForgetTenantAsync("acme");
        Assert.True(await store.UseOnceAsync("acme", "assertion:a", until.AddMinutes(6)));
    }

    private async Task CountsWithinItsWindowAsync(IProtectionStore store)
    {
        var window = TimeSpan.FromMinutes(1);
        Assert.Equal(1, await store.IncrementAsync("acme", "rl:203.0.113.1", window));
        Assert.Equal(2, await store.IncrementAsync("acme", "rl:203.0.113.1", window));
        Assert.Equal(1, await store.IncrementAsync("acme", "rl:203.0.113.2", window));
        Assert.Equal(1, await store.IncrementAsync("acme", "rl:203.0.113.1", TimeSpan.FromMinutes(30)));

        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(3, await store.IncrementAsync("acme", "rl:203.0.113.1", window));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await store.IncrementAsync("acme", "rl:203.0.113.1", window));
    }

    [Fact]
    public async Task DistinctSet_CountsEachMemberOnce_CountsOthersWithoutTheAsker_AndEmptiesWithItsWindow()
    {
        var window = TimeSpan.FromMinutes(30);
        Assert.Equal(1, await _store.AddDistinctAsync("acme", "ipfailed:203.0.113.1", "ADA@ACME.TEST", window));
        Assert.Equal(1, await _store.AddDistinctAsync("acme", "ipfailed:203.0.113.1", "ADA@ACME.TEST", window));
        Assert.Equal(2, await _store.AddDistinctAsync("acme", "ipfailed:203.0.113.1", "BOB@ACME.TEST", window));
        Assert.Equal(1, await _store.CountOthersAsync("acme", "ipfailed:203.0.113.1", "ADA@ACME.TEST", window));
        Assert.Equal(2, await _store.CountOthersAsync("acme", "ipfailed:203.0.113.1", "EVE@ACME.TEST", window));
        Assert.Equal(0, await _store.CountOthersAsync("acme", "ipfailed:203.0.113.9", "EVE@ACME.TEST", window));

        _time.Advance(window);
        Assert.Equal(0, await _store.CountOthersAsync("acme", "ipfailed:203.0.113.1", "EVE@ACME.TEST", window));
        Assert.Equal(1, await _store.AddDistinctAsync("acme", "ipfailed:203.0.113.1", "BOB@ACME.TEST", window));
    }

    [Fact]
    public async Task Blocks_AreListedPerTenant_ExpireWithTheServiceClock_AndCanBeLifted()
    {
        var now = _time.GetUtcNow();
        await _store.BlockAsync("acme", "203.0.113.2", now.AddMinutes(30), "unknown_user_failures");
        await _store.BlockAsync("acme", "203.0.113.1", now.AddMinutes(10), "admin");
        await _store.BlockAsync("globex", "203.0.113.3", now.AddMinutes(30), "credential_stuffing");

        Assert.Equal(new IpBlock("203.0.113.2", now.AddMinutes(30), "unknown_user_failures"), await _store.GetBlockAsync("acme", "203.0.113.2"));
        Assert.Null(await _store.GetBlockAsync("acme", "203.0.113.3"));
        Assert.Equal(["203.0.113.1", "203.0.113.2"], (await _store.ListBlocksAsync("acme")).Select(b => b.Ip));

        _time.Advance(TimeSpan.FromMinutes(10));
        Assert.Null(await _store.GetBlockAsync("acme", "203.0.113.1"));
        Assert.Equal(["203.0.113.2"], (await _store.ListBlocksAsync("acme")).Select(b => b.Ip));
        Assert.False(await _store.UnblockAsync("acme", "203.0.113.1"));

        Assert.True(await _store.UnblockAsync("acme", "203.0.113.2"));
        Assert.Null(await _store.GetBlockAsync("acme", "203.0.113.2"));
        Assert.False(await _store.UnblockAsync("acme", "203.0.113.2"));
        Assert.Empty(await _store.ListBlocksAsync("acme"));
        Assert.Single(await _store.ListBlocksAsync("globex"));

        _time.Advance(TimeSpan.FromMinutes(20));
        Assert.Empty(await _store.ListBlocksAsync("globex"));
    }

    [Fact]
    public async Task Lockout_GrantsSlotsOnlyUnderTheThreshold_LocksAtIt_AndEndsWithTheServiceClock()
    {
        var lockout = TimeSpan.FromMinutes(10);
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 3));

        // Three in flight: a fourth could overshoot, so it does not reach the password.
        Assert.Equal(AttemptSlot.Locked, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
        Assert.Null(await _lockouts.LockedUntilAsync("acme", "u1"));

        await _lockouts.CompleteAttemptAsync("acme", "u1", false, 3, lockout);
        await _lockouts.CompleteAttemptAsync("acme", "u1", false, 3, lockout);
        Assert.Null(await _lockouts.LockedUntilAsync("acme", "u1"));
        await _lockouts.CompleteAttemptAsync("acme", "u1", false, 3, lockout);
        Assert.Equal(_time.GetUtcNow() + lockout, await _lockouts.LockedUntilAsync("acme", "u1"));
        Assert.Equal(AttemptSlot.Locked, await _lockouts.BeginAttemptAsync("acme", "u1", 3));

        // Another tenant's counter of the same key is its own.
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("globex", "u1", 3));

        _time.Advance(lockout - TimeSpan.FromSeconds(1));
        Assert.Equal(AttemptSlot.Locked, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await _lockouts.LockedUntilAsync("acme", "u1"));
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
        await _lockouts.CompleteAttemptAsync("acme", "u1", false, 3, lockout);

        // A fresh count after the lockout: two more failures do not lock.
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
        await _lockouts.CompleteAttemptAsync("acme", "u1", false, 3, lockout);
        Assert.Null(await _lockouts.LockedUntilAsync("acme", "u1"));
    }

    [Fact]
    public async Task ForgetTenant_DestroysEveryKeyOfTheTenant_AndNothingOfAnother()
    {
        var window = TimeSpan.FromMinutes(30);
        var until = _time.GetUtcNow().AddMinutes(30);
        foreach (var tenant in new[] { "acme", "acme-eu" })
        {
            await SeedAsync(_store, tenant, window, until);
            await _lockouts.BeginAttemptAsync(tenant, "u1", 3);
            await _lockouts.CompleteAttemptAsync(tenant, "u1", false, 3, TimeSpan.FromMinutes(10));
        }

        Assert.NotEmpty(await KeysAsync("acme"));

        await _store.ForgetTenantAsync("acme");

        // Nothing of acme is left in Redis: no address, no account id.
        Assert.Empty(await KeysAsync("acme"));
        await AssertForgottenAsync(_store, "acme", window);

        // A tenant whose id starts with the erased one's keeps all of its state.
        await AssertKeptAsync(_store, "acme-eu", window);
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme-eu", "u1", 3));
        await _lockouts.CompleteAttemptAsync("acme-eu", "u1", false, 3, TimeSpan.FromMinutes(10));
        await _lockouts.BeginAttemptAsync("acme-eu", "u1", 3);
        await _lockouts.CompleteAttemptAsync("acme-eu", "u1", false, 3, TimeSpan.FromMinutes(10));
        Assert.NotNull(await _lockouts.LockedUntilAsync("acme-eu", "u1"));
    }

    [Fact]
    public async Task InMemoryStore_ForgetsATenant_AndNothingOfAnother()
    {
        var store = new InMemoryProtectionStore(_time);
        var window = TimeSpan.FromMinutes(30);
        foreach (var tenant in new[] { "acme", "globex" })
        {
            await SeedAsync(store, tenant, window, _time.GetUtcNow().AddMinutes(30));
        }

        await store.ForgetTenantAsync("acme");

        await AssertForgottenAsync(store, "acme", window);
        await AssertKeptAsync(store, "globex", window);
    }

    [Fact]
    public async Task InMemoryStore_AFloodOfNewKeys_ResetsNoLiveCount()
    {
        var store = new InMemoryProtectionStore(_time);
        var window = TimeSpan.FromMinutes(30);
        Assert.Equal(1, await store.IncrementAsync("acme", "ipfailed:203.0.113.1", window));

        // Anyone can make keys: a rate-limit counter per client id posted to the token endpoint.
        for (var i = 0; i < 120_000; i++)
        {
            await store.IncrementAsync("acme", $"rl:token:client{i}", TimeSpan.FromSeconds(1));
        }

        Assert.Equal(2, await store.IncrementAsync("acme", "ipfailed:203.0.113.1", window));
    }

    [Fact]
    public async Task InMemoryStore_LetsGoOfClosedWindowsAndExpiredBlocks_AndKeepsTheRest()
    {
        var store = new InMemoryProtectionStore(_time);
        await store.IncrementAsync("acme", "ipfailed:203.0.113.1", TimeSpan.FromMinutes(30));
        await store.AddDistinctAsync("acme", "ipnames:203.0.113.1", "ADA@ACME.TEST", TimeSpan.FromMinutes(30));
        await store.BlockAsync("acme", "203.0.113.9", _time.GetUtcNow().AddMinutes(1), "test");
        for (var i = 0; i < 10_000; i++)
        {
            await store.IncrementAsync("acme", $"rl:token:client{i}", TimeSpan.FromSeconds(1));
        }

        Assert.Equal(10_003, store.Entries);

        _time.Advance(TimeSpan.FromMinutes(2));
        await store.IncrementAsync("acme", "rl:tenant", TimeSpan.FromSeconds(1));

        Assert.Equal(3, store.Entries);
        Assert.Equal(2, await store.IncrementAsync("acme", "ipfailed:203.0.113.1", TimeSpan.FromMinutes(30)));
        Assert.Equal(1, await store.CountOthersAsync("acme", "ipnames:203.0.113.1", "EVE@ACME.TEST", TimeSpan.FromMinutes(30)));
    }

    [Fact]
    public async Task InMemoryStore_KeepsAClosedCounterForItsKeysNextRequest_ThenLetsItGo()
    {
        var store = new InMemoryProtectionStore(_time);
        var second = TimeSpan.FromSeconds(1);
        Assert.Equal(1, await store.IncrementAsync("acme", "rl:token:cc", second));
        Assert.Equal(2, await store.IncrementAsync("acme", "rl:token:cc", second));

        // Its window closed 10 s ago: kept (another key's request sweeps), and counting from 1 in the new window.
        _time.Advance(TimeSpan.FromSeconds(11));
        await store.IncrementAsync("acme", "rl:tenant", second);
        Assert.Equal(2, store.Entries);
        Assert.Equal(1, await store.IncrementAsync("acme", "rl:token:cc", second));

        // Idle past the grace: swept.
        _time.Advance(TimeSpan.FromMilliseconds(InMemoryProtectionStore.IdleCounterMilliseconds + 2_000));
        await store.IncrementAsync("acme", "rl:signin:203.0.113.1", TimeSpan.FromMinutes(1));
        Assert.Equal(1, store.Entries);
    }

    [Fact]
    public async Task InMemoryStore_HoldingManyCounters_LetsClosedOnesGoAtOnce()
    {
        var store = new InMemoryProtectionStore(_time);
        var second = TimeSpan.FromSeconds(1);
        for (var i = 0; i <= InMemoryProtectionStore.IdleCountersKeptUpTo; i++)
        {
            await store.IncrementAsync("acme", $"rl:token:client{i}", second);
        }

        Assert.Equal(1, await store.IncrementAsync("acme", "ipfailed:203.0.113.1", TimeSpan.FromMinutes(30)));
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(2, await store.IncrementAsync("acme", "ipfailed:203.0.113.1", TimeSpan.FromMinutes(30)));

        Assert.Equal(1, store.Entries);
    }

    /// <summary>The tenant's counter starts again, its set is empty, its block gone.</summary>
    private static async Task AssertForgottenAsync(IProtectionStore store, string tenant, TimeSpan window)
    {
        Assert.Equal(1, await store.IncrementAsync(tenant, "rl:signin:203.0.113.1", window));
        Assert.Equal(0, await store.CountOthersAsync(tenant, "ipfailed:203.0.113.1", "EVE@ACME.TEST", window));
        Assert.Null(await store.GetBlockAsync(tenant, "203.0.113.1"));
    }

    /// <summary>What <see cref="SeedAsync"/> made for the tenant is all still there.</summary>
    private static async Task AssertKeptAsync(IProtectionStore store, string tenant, TimeSpan window)
    {
        Assert.Equal(2, await store.IncrementAsync(tenant, "rl:signin:203.0.113.1", window));
        Assert.Equal(1, await store.CountOthersAsync(tenant, "ipfailed:203.0.113.1", "EVE@ACME.TEST", window));
        Assert.NotNull(await store.GetBlockAsync(tenant, "203.0.113.1"));
    }

    /// <summary>One counter, one set and one block of a tenant, each naming the same address.</summary>
    private static async Task SeedAsync(IProtectionStore store, string tenant, TimeSpan window, DateTimeOffset blockedUntil)
    {
        await store.IncrementAsync(tenant, "rl:signin:203.0.113.1", window);
        await store.AddDistinctAsync(tenant, "ipfailed:203.0.113.1", "ADA@ACME.TEST", window);
        await store.BlockAsync(tenant, "203.0.113.1", blockedUntil, "admin");
    }

    private async Task<List<string>> KeysAsync(string tenant)
    {
        var keys = new List<string>();
        foreach (var endpoint in _redis.GetEndPoints())
        {
            await foreach (var key in _redis.GetServer(endpoint).KeysAsync(pattern: $"{_prefix}t:{tenant}:*"))
            {
                keys.Add(key.ToString());
            }
        }

        return keys;
    }

    [Fact]
    public async Task Lockout_SuccessResetsTheFailures()
    {
        var lockout = TimeSpan.FromMinutes(10);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
            await _lockouts.CompleteAttemptAsync("acme", "u1", false, 3, lockout);
        }

        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
        await _lockouts.CompleteAttemptAsync("acme", "u1", true, 3, lockout);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 3));
            await _lockouts.CompleteAttemptAsync("acme", "u1", false, 3, lockout);
        }

        Assert.Null(await _lockouts.LockedUntilAsync("acme", "u1"));
    }

    [Fact]
    public async Task Lockout_GivesBackSlotsOfAttemptsThatNeverCompleted_AfterAMinute()
    {
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 2));
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 2));
        Assert.Equal(AttemptSlot.Locked, await _lockouts.BeginAttemptAsync("acme", "u1", 2));

        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(AttemptSlot.Locked, await _lockouts.BeginAttemptAsync("acme", "u1", 2));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1", 2));
    }

    [Fact]
    public async Task Unlock_EndsEveryLockoutOfTheAccount_AndNoOtherOne()
    {
        var lockout = TimeSpan.FromMinutes(10);
        foreach (var key in new[] { "u1:familiar", "u1:unfamiliar", "u10", "u2" })
        {
            Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", key, 1));
            await _lockouts.CompleteAttemptAsync("acme", key, false, 1, lockout);
            Assert.NotNull(await _lockouts.LockedUntilAsync("acme", key));
        }

        await _lockouts.UnlockAsync("acme", "u1");

        Assert.Null(await _lockouts.LockedUntilAsync("acme", "u1:familiar"));
        Assert.Null(await _lockouts.LockedUntilAsync("acme", "u1:unfamiliar"));
        Assert.NotNull(await _lockouts.LockedUntilAsync("acme", "u10"));
        Assert.NotNull(await _lockouts.LockedUntilAsync("acme", "u2"));
        Assert.Equal(AttemptSlot.Granted, await _lockouts.BeginAttemptAsync("acme", "u1:unfamiliar", 1));
    }

    [Fact]
    public async Task Bus_DeliversAMessageToTheHandlersOfEveryInstance()
    {
        await using var other = await ConnectionMultiplexer.ConnectAsync(TestRedis.Configuration);
        var keys = new RedisKeys(_prefix);
        var first = new RedisInvalidationBus(_redis, keys, NullLogger<RedisInvalidationBus>.Instance);
        var second = new RedisInvalidationBus(other, keys, NullLogger<RedisInvalidationBus>.Instance);
        var atFirst = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var atSecond = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.Subscribe("policy-changed", m => atFirst.TrySetResult(m));
        second.Subscribe("policy-changed", m => atSecond.TrySetResult(m));
        second.Subscribe("tenant-changed", m => atSecond.TrySetResult("wrong channel: " + m));

        await first.PublishAsync("policy-changed", "acme");

        Assert.Equal("acme", await atFirst.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("acme", await atSecond.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
