using StackExchange.Redis;

namespace IdentityService.Protection.Redis;

/// <summary>
/// Lockout counters in Redis, shared by every replica, with the semantics of <see cref="DatabaseLockoutStore"/>.
/// Each counter is a hash {failures, inFlight, inFlightSince, lockedUntil} (times in Unix milliseconds of the
/// service's clock) changed only by Lua scripts, which Redis runs atomically: a slot is granted only while
/// failures plus attempts in flight stay under the threshold, so parallel attempts cannot overshoot it.
/// </summary>
internal sealed class RedisLockoutStore(IConnectionMultiplexer redis, RedisKeys keys, TimeProvider time) : ILockoutStore
{
    private static readonly TimeSpan StaleInFlight = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan CleanupMargin = TimeSpan.FromDays(1);

    // KEYS[1] counter, KEYS[2] the account's index; ARGV: now, max, stale (ms), cleanup TTL (ms), counter key.
    // An expired lockout starts a fresh count; slots held longer than the stale time are given back.
    private const string BeginScript = """
        local now = tonumber(ARGV[1])
        local max = tonumber(ARGV[2])
        local v = redis.call('HMGET', KEYS[1], 'failures', 'inFlight', 'inFlightSince', 'lockedUntil')
        local failures = tonumber(v[1]) or 0
        local inFlight = tonumber(v[2]) or 0
        local since = tonumber(v[3])
        local locked = tonumber(v[4])
        if locked and locked <= now then failures = 0; locked = nil end
        if inFlight > 0 and since and since < now - tonumber(ARGV[3]) then inFlight = 0; since = nil end
        local granted = 0
        if not locked and failures + inFlight < max then
          inFlight = inFlight + 1
          if not since then since = now end
          granted = 1
        end
        redis.call('HSET', KEYS[1], 'failures', failures, 'inFlight', inFlight)
        if since then redis.call('HSET', KEYS[1], 'inFlightSince', since) else redis.call('HDEL', KEYS[1], 'inFlightSince') end
        if locked then redis.call('HSET', KEYS[1], 'lockedUntil', locked) else redis.call('HDEL', KEYS[1], 'lockedUntil') end
        redis.call('SADD', KEYS[2], ARGV[5])
        local ttl = tonumber(ARGV[4])
        for _, key in ipairs(KEYS) do
          if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
        end
        return granted
        """;

    // KEYS[1] counter; ARGV: now, succeeded (1/0), max, lockout (ms), cleanup TTL (ms).
    private const string CompleteScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        local v = redis.call('HMGET', KEYS[1], 'failures', 'inFlight')
        local failures = tonumber(v[1]) or 0
        local inFlight = tonumber(v[2]) or 0
        if inFlight > 0 then inFlight = inFlight - 1 end
        if ARGV[2] == '1' then
          failures = 0
        else
          failures = failures + 1
          if failures >= tonumber(ARGV[3]) then
            redis.call('HSET', KEYS[1], 'lockedUntil', tonumber(ARGV[1]) + tonumber(ARGV[4]))
          end
        end
        redis.call('HSET', KEYS[1], 'failures', failures, 'inFlight', inFlight)
        if inFlight == 0 then redis.call('HDEL', KEYS[1], 'inFlightSince') end
        local ttl = tonumber(ARGV[5])
        if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
        return failures
        """;

    // KEYS: counters; ends their lockouts and failure counts.
    private const string UnlockScript = """
        for _, key in ipairs(KEYS) do
          if redis.call('EXISTS', key) == 1 then
            redis.call('HSET', key, 'failures', 0)
            redis.call('HDEL', key, 'lockedUntil')
          end
        end
        return #KEYS
        """;

    private IDatabase Db => redis.GetDatabase();

    public async Task<AttemptSlot> BeginAttemptAsync(string tenantId, string key, int maxFailures, CancellationToken cancellationToken = default)
    {
        var result = await Db.ScriptEvaluateAsync(BeginScript, [keys.Lockout(tenantId, key), keys.LockoutIndex(tenantId, Account(key))],
            [Now(), maxFailures, (long)StaleInFlight.TotalMilliseconds, (long)CleanupMargin.TotalMilliseconds, key]);
        return (long)result == 1 ? AttemptSlot.Granted : AttemptSlot.Locked;
    }

    public async Task CompleteAttemptAsync(string tenantId, string key, bool succeeded, int maxFailures, TimeSpan lockout, CancellationToken cancellationToken = default)
    {
        await Db.ScriptEvaluateAsync(CompleteScript, [keys.Lockout(tenantId, key)],
            [Now(), succeeded ? 1 : 0, maxFailures, (long)lockout.TotalMilliseconds, (long)(lockout + CleanupMargin).TotalMilliseconds]);
    }

    public async Task<DateTimeOffset?> LockedUntilAsync(string tenantId, string key, CancellationToken cancellationToken = default)
    {
        var value = await Db.HashGetAsync(keys.Lockout(tenantId, key), "lockedUntil");
        return value.TryParse(out long until) && until > Now() ? DateTimeOffset.FromUnixTimeMilliseconds(until) : null;
    }

    public async Task UnlockAsync(string tenantId, string keyPrefix, CancellationToken cancellationToken = default)
    {
        var counters = await Db.SetMembersAsync(keys.LockoutIndex(tenantId, Account(keyPrefix)));
        var matching = counters.Select(c => c.ToString())
            .Where(c => c == keyPrefix || c.StartsWith(keyPrefix + ":", StringComparison.Ordinal))
            .Select(c => keys.Lockout(tenantId, c))
            .ToArray();
        if (matching.Length > 0)
        {
            await Db.ScriptEvaluateAsync(UnlockScript, matching);
        }
    }

    private long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The account a counter belongs to: its key's first segment (<c>{userId}</c> of <c>{userId}:familiar</c>).</summary>
    private static string Account(string key) => key.Split(':', 2)[0];
}
