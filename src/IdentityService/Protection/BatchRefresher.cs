using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Protection;

/// <summary>
/// Reads cache entries in use again off the request path, many per query: the requests that notice an entry's age
/// queue it (<see cref="Enqueue"/>), and one worker at a time takes what is queued, up to <see cref="BatchSize"/>, and
/// reads it with one query. With 10,000 tenants in use that is a few queries a second, where one query per entry was
/// a thousand. A value read again and <paramref name="unchanged"/> keeps its entry, renewed as of the read (nothing
/// long-lived is allocated); any other result (changed, gone) goes to <paramref name="apply"/>.
/// </summary>
internal sealed class BatchRefresher<TKey, TValue>(
    Func<IReadOnlyList<TKey>, CancellationToken, Task<IReadOnlyDictionary<TKey, TValue>>> load,
    Func<TValue, TValue, bool> unchanged,
    Action<TKey, RefreshAheadEntry<TValue>, TValue?, long> apply,
    Func<long> version,
    TimeProvider time,
    ILogger logger)
    where TKey : notnull
    where TValue : class
{
    internal const int BatchSize = 500;

    private readonly ConcurrentQueue<(TKey Key, RefreshAheadEntry<TValue> Entry)> _due = new();
    private int _running;

    /// <summary>Queues an entry whose <see cref="RefreshAheadEntry{T}.TryStartRefresh"/> this caller won.</summary>
    public void Enqueue(TKey key, RefreshAheadEntry<TValue> entry)
    {
        _due.Enqueue((key, entry));
        if (Interlocked.CompareExchange(ref _running, 1, 0) == 0)
        {
            _ = RunAsync();
        }
    }

    /// <summary>
    /// An entry found in its cache: true if it may be served (younger than <paramref name="ttl"/>); once it is
    /// <paramref name="refreshAfter"/> old, the one caller that wins <see cref="RefreshAheadEntry{T}.TryStartRefresh"/>
    /// queues it to be read again.
    /// </summary>
    public bool Serve(TKey key, RefreshAheadEntry<TValue> entry, TimeSpan ttl, TimeSpan refreshAfter)
    {
        var age = time.GetUtcNow() - entry.LoadedAt;
        if (age >= ttl)
        {
            return false;
        }

        if (age >= refreshAfter && entry.TryStartRefresh())
        {
            Enqueue(key, entry);
        }

        return true;
    }

    /// <summary>
    /// Caches <paramref name="value"/> read when the eviction count was <paramref name="before"/> as a new entry, kept
    /// <paramref name="retention"/> unused, unless an eviction happened since; true if it was kept.
    /// </summary>
    public bool Keep(MemoryCache cache, TKey key, TValue value, long before, TimeSpan retention)
    {
        if (version() != before)
        {
            return false;
        }

        cache.Set(key, new RefreshAheadEntry<TValue>(value, time.GetUtcNow()), new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = retention });
        if (version() != before)
        {
            // An eviction between the check and the Set: it may have run before the entry existed.
            cache.Remove(key);
            return false;
        }

        return true;
    }

    /// <summary>
    /// For a value read on a request's path because its entry (<paramref name="stale"/>) was past its TTL: if the value
    /// is <c>unchanged</c> and no eviction happened since <paramref name="before"/>, the entry is renewed as of now and
    /// its value answered (the one just read is dropped young), as a background read does; else null.
    /// </summary>
    public TValue? RenewIfUnchanged(RefreshAheadEntry<TValue>? stale, TValue loaded, long before)
    {
        if (stale is null || !unchanged(stale.Value, loaded) || version() != before)
        {
            return null;
        }

        stale.Renew(time.GetUtcNow());
        return stale.Value;
    }

    private async Task RunAsync()
    {
        // Off the request that queued the first entry.
        await Task.Yield();
        while (true)
        {
            var batch = new List<(TKey Key, RefreshAheadEntry<TValue> Entry)>(Math.Min(_due.Count, BatchSize));
            while (batch.Count < BatchSize && _due.TryDequeue(out var item))
            {
                batch.Add(item);
            }

            if (batch.Count > 0)
            {
                await RefreshAsync(batch);
                continue;
            }

            Volatile.Write(ref _running, 0);
            // An entry queued after the last dequeue and before the reset found the worker running: take it now.
            if (_due.IsEmpty || Interlocked.CompareExchange(ref _running, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private async Task RefreshAsync(List<(TKey Key, RefreshAheadEntry<TValue> Entry)> batch)
    {
        try
        {
            // Taken before the read: a read that raced with an eviction is not kept (see apply).
            var before = version();
            var loaded = await load(batch.ConvertAll(b => b.Key), CancellationToken.None);
            foreach (var (key, entry) in batch)
            {
                var value = loaded.GetValueOrDefault(key);
                if (value is null || !unchanged(entry.Value, value))
                {
                    apply(key, entry, value, before);
                }
                else if (version() == before)
                {
                    entry.Renew(time.GetUtcNow());
                }
                else
                {
                    // An eviction raced with the read: a later request may queue the entry again.
                    entry.RefreshFailed();
                }
            }
        }
        catch (Exception ex)
        {
            // The entries stay until their TTL; a later request queues them again.
            foreach (var (_, entry) in batch)
            {
                entry.RefreshFailed();
            }

            logger.LogWarning(ex, "Reading {Count} cache entries again failed.", batch.Count);
        }
    }
}
