using System.Collections.Concurrent;

namespace IdentityService.Protection;

/// <summary>The protection store of a single instance.</summary>
internal sealed class InMemoryProtectionStore(TimeProvider time) : IProtectionStore
{
    private readonly ConcurrentDictionary<(string Tenant, string Key), (long Bucket, long Count)> _counters = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), (long Bucket, HashSet<string> Members)> _sets = new();
    private readonly ConcurrentDictionary<(string Tenant, string Ip), IpBlock> _blocks = new();

    public Task<long> IncrementAsync(string tenantId, string key, TimeSpan window, CancellationToken cancellationToken = default)
    {
        var bucket = Bucket(window);
        var entry = _counters.AddOrUpdate((tenantId, key), _ => (bucket, 1), (_, current) => current.Bucket == bucket ? (bucket, current.Count + 1) : (bucket, 1));
        Sweep();
        return Task.FromResult(entry.Count);
    }

    public Task<long> AddDistinctAsync(string tenantId, string key, string member, TimeSpan window, CancellationToken cancellationToken = default)
    {
        var bucket = Bucket(window);
        var entry = _sets.AddOrUpdate((tenantId, key), _ => (bucket, new HashSet<string>(StringComparer.Ordinal)), (_, current) => current.Bucket == bucket ? current : (bucket, new HashSet<string>(StringComparer.Ordinal)));
        lock (entry.Members)
        {
            entry.Members.Add(member);
            return Task.FromResult((long)entry.Members.Count);
        }
    }

    public Task<long> CountOthersAsync(string tenantId, string key, string member, TimeSpan window, CancellationToken cancellationToken = default)
    {
        if (!_sets.TryGetValue((tenantId, key), out var entry) || entry.Bucket != Bucket(window))
        {
            return Task.FromResult(0L);
        }

        lock (entry.Members)
        {
            return Task.FromResult((long)entry.Members.Count(m => m != member));
        }
    }

    public Task BlockAsync(string tenantId, string ip, DateTimeOffset until, string reason, CancellationToken cancellationToken = default)
    {
        _blocks[(tenantId, ip)] = new IpBlock(ip, until, reason);
        return Task.CompletedTask;
    }

    public Task<IpBlock?> GetBlockAsync(string tenantId, string ip, CancellationToken cancellationToken = default) =>
        Task.FromResult(_blocks.TryGetValue((tenantId, ip), out var block) && block.Until > time.GetUtcNow() ? block : null);

    public Task<IReadOnlyList<IpBlock>> ListBlocksAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        IReadOnlyList<IpBlock> blocks = _blocks.Where(b => b.Key.Tenant == tenantId && b.Value.Until > now).Select(b => b.Value).OrderBy(b => b.Ip, StringComparer.Ordinal).ToList();
        return Task.FromResult(blocks);
    }

    public Task<bool> UnblockAsync(string tenantId, string ip, CancellationToken cancellationToken = default) =>
        Task.FromResult(_blocks.TryRemove((tenantId, ip), out var block) && block.Until > time.GetUtcNow());

    public Task ForgetTenantAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        foreach (var key in _counters.Keys.Where(k => k.Tenant == tenantId))
        {
            _counters.TryRemove(key, out _);
        }

        foreach (var key in _sets.Keys.Where(k => k.Tenant == tenantId))
        {
            _sets.TryRemove(key, out _);
        }

        foreach (var key in _blocks.Keys.Where(k => k.Tenant == tenantId))
        {
            _blocks.TryRemove(key, out _);
        }

        return Task.CompletedTask;
    }

    private long Bucket(TimeSpan window) => time.GetUtcNow().ToUnixTimeMilliseconds() / (long)window.TotalMilliseconds;

    private void Sweep()
    {
        // Bounded memory: expired blocks go when the map grows.
        if (_blocks.Count > 10_000)
        {
            var now = time.GetUtcNow();
            foreach (var expired in _blocks.Where(b => b.Value.Until <= now).Select(b => b.Key).ToList())
            {
                _blocks.TryRemove(expired, out _);
            }
        }

        if (_counters.Count > 100_000)
        {
            _counters.Clear();
            _sets.Clear();
        }
    }
}
