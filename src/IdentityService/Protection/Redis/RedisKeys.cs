using StackExchange.Redis;

namespace IdentityService.Protection.Redis;

/// <summary>
/// Names of the service's keys and channels, all under <see cref="RedisOptions.KeyPrefix"/>. A tenant's blocks
/// and lockouts are under <c>{prefix}t:{tenant}:</c>; a counter's key holds its tenant already.
/// </summary>
internal sealed class RedisKeys(string prefix)
{
    public string Prefix { get; } = prefix;

    /// <summary>A tenant's fixed-window counter: the window's length and number are in the name, so a window ends by the service's clock.</summary>
    public RedisKey Counter(string tenantId, string key, TimeSpan window, long bucket) => $"{Prefix}t:{tenantId}:c:{(long)window.TotalMilliseconds}:{bucket}:{key}";

    /// <summary>A tenant's fixed-window set of distinct members.</summary>
    public RedisKey Set(string tenantId, string key, TimeSpan window, long bucket) => $"{Prefix}t:{tenantId}:s:{(long)window.TotalMilliseconds}:{bucket}:{key}";

    /// <summary>
    /// A SCAN pattern for every key of a tenant: all of them start with <c>{Prefix}t:{tenantId}:</c>. Glob characters
    /// of the prefix (configurable) are escaped; tenant ids are lowercase letters, digits and hyphens.
    /// </summary>
    public RedisValue TenantPattern(string tenantId) => GlobEscape($"{Prefix}t:{tenantId}:") + "*";

    private static string GlobEscape(string value)
    {
        var escaped = new System.Text.StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (c is '*' or '?' or '[' or ']' or '\\')
            {
                escaped.Append('\\');
            }

            escaped.Append(c);
        }

        return escaped.ToString();
    }

    /// <summary>A one-time value's use (its key already a hash), under the tenant's prefix so that erasure finds it.</summary>
    public RedisKey Once(string tenantId, string key) => $"{Prefix}t:{tenantId}:once:{key}";

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
