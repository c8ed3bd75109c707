using StackExchange.Redis;

namespace IdentityService.Protection.Redis;

/// <summary>
/// Names of the service's keys and channels, all under <see cref="RedisOptions.KeyPrefix"/>. A tenant's blocks
/// and lockouts are under <c>{prefix}t:{tenant}:</c>; a counter's key holds its tenant already.
/// </summary>
internal sealed class RedisKeys(string prefix)
{
    public string Prefix { get; } = prefix;

    /// <summary>A fixed-window counter: the window's length and number are in the name, so a window ends by the service's clock.</summary>
    public RedisKey Counter(string key, TimeSpan window, long bucket) => $"{Prefix}c:{(long)window.TotalMilliseconds}:{bucket}:{key}";

    /// <summary>A fixed-window set of distinct members.</summary>
    public RedisKey Set(string key, TimeSpan window, long bucket) => $"{Prefix}s:{(long)window.TotalMilliseconds}:{bucket}:{key}";

    /// <summary>The tenant's blocked addresses, each scored by when its block ends (Unix milliseconds).</summary>
    public RedisKey Blocks(string tenantId) => $"{Prefix}t:{tenantId}:blocks";

    /// <summary>Why each address of <see cref="Blocks"/> is blocked.</summary>
    public RedisKey BlockReasons(string tenantId) => $"{Prefix}t:{tenantId}:block-reasons";

    /// <summary>One lockout counter: a hash of failures, inFlight, inFlightSince and lockedUntil.</summary>
    public RedisKey Lockout(string tenantId, string key) => $"{Prefix}t:{tenantId}:lockout:{key}";

    /// <summary>The lockout counters of one account (the counter keys' first segment), so that unlocking it finds them all.</summary>
    public RedisKey LockoutIndex(string tenantId, string account) => $"{Prefix}t:{tenantId}:lockouts:{account}";

    public RedisChannel Channel(string channel) => RedisChannel.Literal($"{Prefix}bus:{channel}");
}
