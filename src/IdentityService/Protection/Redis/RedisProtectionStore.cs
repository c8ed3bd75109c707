using StackExchange.Redis;

namespace IdentityService.Protection.Redis;

/// <summary>
/// The protections' counters and blocks in Redis, shared by every replica. Windows and expiries follow the
/// injected <see cref="TimeProvider"/>: a counter's key names its fixed window's number, a block's expiry is its
/// score in the tenant's sorted set. Redis's own expiry only removes keys long after they stopped mattering.
/// </summary>
internal sealed class RedisProtectionStore(IConnectionMultiplexer redis, RedisKeys keys, TimeProvider time) : IProtectionStore
{
    private static readonly TimeSpan CleanupMargin = TimeSpan.FromDays(1);

    // KEYS[1] counter; ARGV[1] cleanup TTL in ms.
    private const string IncrementScript = """
        local count = redis.call('INCR', KEYS[1])
        if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        return count
        """;

    // KEYS[1] set; ARGV[1] member, ARGV[2] cleanup TTL in ms.
    private const string AddDistinctScript = """
        if redis.call('SADD', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 1 then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return redis.call('SCARD', KEYS[1])
        """;

    // KEYS[1] set; ARGV[1] member.
    private const string CountOthersScript = """
        return redis.call('SCARD', KEYS[1]) - redis.call('SISMEMBER', KEYS[1], ARGV[1])
        """;

    // KEYS[1] blocks (ip -> until), KEYS[2] reasons (ip -> reason); ARGV: ip, until, reason, now, cleanup TTL (all ms).
    private const string BlockScript = """
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, 100)
        if #expired > 0 then
          redis.call('ZREM', KEYS[1], unpack(expired))
          redis.call('HDEL', KEYS[2], unpack(expired))
        end
        local ttl = tonumber(ARGV[5])
        for _, key in ipairs(KEYS) do
          if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
        end
        return 1
        """;

    // KEYS[1] blocks, KEYS[2] reasons; ARGV: ip, now. Returns 1 when an active block was lifted.
    private const string UnblockScript = """
        local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('HDEL', KEYS[2], ARGV[1])
        if ends and tonumber(ends) > tonumber(ARGV[2]) then return 1 end
        return 0
        """;

    // KEYS[1] one-time key; ARGV: until, now, TTL (all ms). Returns 1 when no use before it still holds.
    private const string UseOnceScript = """
        local held = redis.call('GET', KEYS[1])
        if held and tonumber(held) > tonumber(ARGV[2]) then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
        return 1
        """;

    private IDatabase Db => redis.GetDatabase();

    public async Task<bool> UseOnceAsync(string tenantId, string key, DateTimeOffset until, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var ttl = (long)((until - now).TotalMilliseconds + CleanupMargin.TotalMilliseconds);
        var result = await Db.ScriptEvaluateAsync(UseOnceScript, [keys.Once(tenantId, key)], [until.ToUnixTimeMilliseconds(), now.ToUnixTimeMilliseconds(), ttl]);
        return (long)result == 1;
    }

    public async Task<long> IncrementAsync(string tenantId, string key, TimeSpan window, CancellationToken cancellationToken = default)
    {
        var result = await Db.ScriptEvaluateAsync(IncrementScript, [keys.Counter(tenantId, key, window, Bucket(window))], [CleanupTtl(window)]);
        return (long)result;
    }

    public async Task<long> AddDistinctAsync(string tenantId, string key, string member, TimeSpan window, CancellationToken cancellationToken = default)
    {
        var result = await Db.ScriptEvaluateAsync(AddDistinctScript, [keys.Set(tenantId, key, window, Bucket(window))], [member, CleanupTtl(window)]);
        return (long)result;
    }

    public async Task<long> CountOthersAsync(string tenantId, string key, string member, TimeSpan window, CancellationToken cancellationToken = default)
    {
        var result = await Db.ScriptEvaluateAsync(CountOthersScript, [keys.Set(tenantId, key, window, Bucket(window))], [member]);
        return (long)result;
    }

    public async Task BlockAsync(string tenantId, string ip, DateTimeOffset until, string reason, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var ttl = (long)(Max(until - now, TimeSpan.Zero) + CleanupMargin).TotalMilliseconds;
        await Db.ScriptEvaluateAsync(BlockScript, [keys.Blocks(tenantId), keys.BlockReasons(tenantId)],
            [ip, until.ToUnixTimeMilliseconds(), reason, now.ToUnixTimeMilliseconds(), ttl]);
    }

    public async Task<IpBlock?> GetBlockAsync(string tenantId, string ip, CancellationToken cancellationToken = default)
    {
        var until = await Db.SortedSetScoreAsync(keys.Blocks(tenantId), ip);
        if (until is not double ms || ms <= time.GetUtcNow().ToUnixTimeMilliseconds())
        {
            return null;
        }

        var reason = await Db.HashGetAsync(keys.BlockReasons(tenantId), ip);
        return new IpBlock(ip, DateTimeOffset.FromUnixTimeMilliseconds((long)ms), reason.HasValue ? reason.ToString() : "");
    }

    public async Task<IReadOnlyList<IpBlock>> ListBlocksAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var active = await Db.SortedSetRangeByScoreWithScoresAsync(keys.Blocks(tenantId), now, double.PositiveInfinity, Exclude.Start);
        if (active.Length == 0)
        {
            return [];
        }

        var reasons = await Db.HashGetAsync(keys.BlockReasons(tenantId), active.Select(e => e.Element).ToArray());
        return active
            .Select((e, i) => new IpBlock(e.Element.ToString(), DateTimeOffset.FromUnixTimeMilliseconds((long)e.Score), reasons[i].HasValue ? reasons[i].ToString() : ""))
            .OrderBy(b => b.Ip, StringComparer.Ordinal)
            .ToList();
    }

    public async Task<bool> UnblockAsync(string tenantId, string ip, CancellationToken cancellationToken = default)
    {
        var result = await Db.ScriptEvaluateAsync(UnblockScript, [keys.Blocks(tenantId), keys.BlockReasons(tenantId)],
            [ip, time.GetUtcNow().ToUnixTimeMilliseconds()]);
        return (long)result == 1;
    }

    /// <summary>
    /// Every key of the tenant (counters, sets, blocks, and the lockout counters of <see cref="RedisLockoutStore"/>,
    /// which share the tenant's key space) is found by SCAN on each primary and unlinked, a page at a time.
    /// </summary>
    public async Task ForgetTenantAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        var pattern = keys.TenantPattern(tenantId);
        var db = Db;
        foreach (var endpoint in redis.GetEndPoints())
        {
            var server = redis.GetServer(endpoint);
            if (!server.IsConnected || server.IsReplica)
            {
                continue;
            }

            var page = new List<RedisKey>(500);
            await foreach (var key in server.KeysAsync(db.Database, pattern, pageSize: 500).WithCancellation(cancellationToken))
            {
                page.Add(key);
                if (page.Count == 500)
                {
                    await db.KeyDeleteAsync([.. page], CommandFlags.DemandMaster);
                    page.Clear();
                }
            }

            if (page.Count > 0)
            {
                await db.KeyDeleteAsync([.. page], CommandFlags.DemandMaster);
            }
        }
    }

    private long Bucket(TimeSpan window) => time.GetUtcNow().ToUnixTimeMilliseconds() / (long)window.TotalMilliseconds;

    /// <summary>Long enough for any clock the service runs with: the window twice over, and a day.</summary>
    private static long CleanupTtl(TimeSpan window) => (long)(window + window + CleanupMargin).TotalMilliseconds;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
