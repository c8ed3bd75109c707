using System.Collections.Concurrent;

namespace IdentityService.Protection;

/// <summary>
/// The protection store of a single instance. Memory is bounded by what is live: at most once a second, a
/// request sweeps out the sets whose window has closed, the blocks that have expired, and the counters whose
/// window closed more than <see cref="IdleCounterMilliseconds"/> ago (at once while more than
/// <see cref="IdleCountersKeptUpTo"/> counters are held). Nothing live is ever dropped, so no flood of new keys
/// (client ids, addresses) can reset another key's count, such as an address's failed sign-ins.
/// </summary>
internal sealed class InMemoryProtectionStore(TimeProvider time) : IProtectionStore
{
    private const long SweepEveryMilliseconds = 1000;

    /// <summary>
    /// How long a counter is kept after its window closed, to be reset in place by the key's next request. A
    /// tenant or client busy every few seconds keeps one counter; swept with its window, it got a new one on
    /// almost every request, each living a second or two: long enough to reach the heap's oldest generation and
    /// die there (with 10,000 tenants in use, about 200,000 dead counters, 33 MB, in the heap after a 10 s run).
    /// </summary>
    internal const long IdleCounterMilliseconds = 30_000;

    /// <summary>Above this many counters, closed ones are swept at once, as if no key came back (a flood of new keys).</summary>
    internal const int IdleCountersKeptUpTo = 50_000;

    // Keyed by window too, as the Redis store's keys are: one key counted over two windows has two counts.
    private readonly ConcurrentDictionary<(string Tenant, string Key, long Window), Counter> _counters = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), Set> _sets = new();
    private readonly ConcurrentDictionary<(string Tenant, string Ip), IpBlock> _blocks = new();
    private readonly ConcurrentDictionary<(string Tenant, string Key), long> _used = new();
    private long _nextSweep;

    /// <summary>How many counters, sets, blocks and one-time values are held (for tests).</summary>
    internal int Entries => _counters.Count + _sets.Count + _blocks.Count + _used.Count;

    public Task<long> IncrementAsync(string tenantId, string key, TimeSpan window, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var (bucket, closes) = Bucket(now, window);
        long count;
        while (true)
        {
            // One counter per key, reset in place when a new window opens: a request allocates nothing that outlives it
            // (a counter replaced on every request kept ~20,000 short-lived objects a second going into the old
            // generations with 10,000 busy clients, one window each).
            var counter = _counters.GetOrAdd((tenantId, key, (long)window.TotalMilliseconds), static (_, w) => new Counter(w.Bucket, w.Closes), (Bucket: bucket, Closes: closes));
            lock (counter)
            {
                if (counter.Removed)
                {
                    // Swept between the lookup and the lock: the next lookup finds or makes the live one.
                    continue;
                }

                if (bucket > counter.Bucket)
                {
                    counter.Bucket = bucket;
                    counter.Closes = closes;
                    counter.Count = 0;
                }

                // A request that read the clock just before another opened the next window counts in that window.
                count = ++counter.Count;
                break;
            }
        }

        Sweep(now);
        return Task.FromResult(count);
    }

    public Task<long> AddDistinctAsync(string tenantId, string key, string member, TimeSpan window, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var (bucket, closes) = Bucket(now, window);
        var entry = _sets.AddOrUpdate((tenantId, key), _ => new Set(bucket, new HashSet<string>(StringComparer.Ordinal), closes),
            (_, current) => current.Bucket == bucket ? current : new Set(bucket, new HashSet<string>(StringComparer.Ordinal), closes));
        Sweep(now);
        lock (entry.Members)
        {
            entry.Members.Add(member);
            return Task.FromResult((long)entry.Members.Count);
        }
    }

    public Task<long> CountOthersAsync(string tenantId, string key, string member, TimeSpan window, CancellationToken cancellationToken = default)
    {
        if (!_sets.TryGetValue((tenantId, key), out var entry) || entry.Bucket != Bucket(time.GetUtcNow().ToUnixTimeMilliseconds(), window).Bucket)
        {
            return Task.FromResult(0L);
        }

        lock (entry.Members)
        {
            return Task.FromResult((long)entry.Members.Count(m => m != member));
        }
    }

    public Task<bool> UseOnceAsync(string tenantId, string key, DateTimeOffset until, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        Sweep(now);
        var ends = until.ToUnixTimeMilliseconds();
        while (true)
        {
            if (_used.TryAdd((tenantId, key), ends))
            {
                return Task.FromResult(true);
            }

            if (!_used.TryGetValue((tenantId, key), out var held))
            {
                continue; // swept meanwhile
            }

            // A live earlier use refuses; one that has ended (not swept yet) gives way.
            if (held > now)
            {
                return Task.FromResult(false);
            }

            if (_used.TryUpdate((tenantId, key), ends, held))
            {
                return Task.FromResult(true);
            }
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
            if (_counters.TryRemove(key, out var counter))
            {
                lock (counter)
                {
                    counter.Removed = true;
                }
            }
        }

        foreach (var key in _sets.Keys.Where(k => k.Tenant == tenantId))
        {
            _sets.TryRemove(key, out _);
        }

        foreach (var key in _blocks.Keys.Where(k => k.Tenant == tenantId))
        {
            _blocks.TryRemove(key, out _);
        }

        foreach (var key in _used.Keys.Where(k => k.Tenant == tenantId))
        {
            _used.TryRemove(key, out _);
        }

        return Task.CompletedTask;
    }

    private static (long Bucket, long Closes) Bucket(long now, TimeSpan window)
    {
        var length = (long)window.TotalMilliseconds;
        var bucket = now / length;
        return (bucket, (bucket + 1) * length);
    }

    private void Sweep(long now)
    {
        var due = Volatile.Read(ref _nextSweep);
        if (now < due || Interlocked.CompareExchange(ref _nextSweep, now + SweepEveryMilliseconds, due) != due)
        {
            return;
        }

        // An entry is removed only as it was read: one updated meanwhile (a new window) stays.
        var closedBefore = _counters.Count > IdleCountersKeptUpTo ? now : now - IdleCounterMilliseconds;
        foreach (var entry in _counters)
        {
            lock (entry.Value)
            {
                if (entry.Value.Closes <= closedBefore && _counters.TryRemove(entry))
                {
                    entry.Value.Removed = true;
                }
            }
        }

        foreach (var entry in _sets)
        {
            if (entry.Value.Closes <= now)
            {
                _sets.TryRemove(entry);
            }
        }

        foreach (var entry in _blocks)
        {
            if (entry.Value.Until.ToUnixTimeMilliseconds() <= now)
            {
                _blocks.TryRemove(entry);
            }
        }

        foreach (var entry in _used)
        {
            if (entry.Value <= now)
            {
                _used.TryRemove(entry);
            }
        }
    }

    /// <summary>A key's count in its current window; read and written under its own lock.</summary>
    private sealed class Counter(long bucket, long closes)
    {
        public long Bucket = bucket;
        public long Closes = closes;
        public long Count;

        /// <summary>Swept out of the dictionary: no longer counts.</summary>
        public bool Removed;
    }

    private sealed record Set(long Bucket, HashSet<string> Members, long Closes);
}
