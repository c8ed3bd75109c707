using IdentityService.Data;
using IdentityService.Protection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Tenancy;

/// <summary>
/// Finds tenants by id for every tenant-scoped request. Tenants are cached for a short time and evicted at once
/// on a change, here and (through the invalidation bus, so with Redis on every replica) on the others; without
/// Redis, a change made on another replica is seen within <see cref="Ttl"/>. A tenant in use is read again in the
/// background once its entry is <see cref="RefreshAfter"/> old (many tenants per query,
/// <see cref="BatchRefresher{TKey,TValue}"/>), so its requests never wait for the database; an entry
/// <see cref="Ttl"/> old is never used (the age is the entry's own, from the injected <see cref="TimeProvider"/>; the
/// memory cache drops entries unused for <see cref="Retention"/>). A tenant read again unchanged keeps its entry and
/// instance, in the background or on a request past the TTL. A read that raced with an eviction is not kept.
/// </summary>
public sealed class TenantDirectory : IDisposable
{
    public const string Channel = "tenant-changed";

    internal static readonly TimeSpan Ttl = TimeSpan.FromSeconds(30);

    /// <summary>The age at which a tenant in use is read again in the background.</summary>
    internal static readonly TimeSpan RefreshAfter = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How long an entry unused is kept. Past <see cref="Ttl"/> it is never served without a read; it is kept so that a
    /// tenant back after an idle and found unchanged by that read keeps its instance (the one its OpenID Connect state,
    /// kept as long, holds) rather than leaving it, long-lived, as garbage in the heap's oldest generation. The cost is
    /// the entry itself, about 200 bytes, while the state lives.
    /// </summary>
    internal static readonly TimeSpan Retention = TimeSpan.FromMinutes(30);

    // Compiled once: a tenant not cached, or idle past its TTL, is read on its request's path.
    private static readonly Func<IdentityDb, string, CancellationToken, Task<Tenant?>> ById = EF.CompileAsyncQuery(
        (IdentityDb db, string id, CancellationToken _) => db.Tenants.AsNoTracking().FirstOrDefault(t => t.Id == id));

    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 100_000 });
    private readonly IServiceScopeFactory _scopes;
    private readonly IInvalidationBus _bus;
    private readonly BatchRefresher<string, Tenant> _refresher;
    private IModel? _model;
    private long _evictions;

    public TenantDirectory(IServiceScopeFactory scopes, IInvalidationBus bus, TimeProvider time, ILogger<TenantDirectory> logger)
    {
        _scopes = scopes;
        _bus = bus;
        _refresher = new(LoadAsync, (cached, loaded) => _model is { } model && RowEquality.Same(model, cached, loaded), Apply,
            () => Volatile.Read(ref _evictions), time, logger);
        bus.Subscribe(Channel, Forget);
    }

    public async ValueTask<Tenant?> FindAsync(string id, CancellationToken cancellationToken)
    {
        if (!TenantIds.IsValid(id))
        {
            return null;
        }

        if (_cache.TryGetValue(id, out RefreshAheadEntry<Tenant>? entry) && entry is not null && _refresher.Serve(id, entry, Ttl, RefreshAfter))
        {
            return entry.Value;
        }

        return await LoadAsync(id, entry, cancellationToken);
    }

    /// <summary>When the cached entry of a tenant was last read (or found unchanged) in the database; null if none.</summary>
    internal DateTimeOffset? ReadAt(string id) => _cache.TryGetValue(id, out RefreshAheadEntry<Tenant>? entry) ? entry?.LoadedAt : null;

    /// <summary>Reads a tenant on a request's path: not cached, or its entry (<paramref name="stale"/>) past the TTL.</summary>
    private async Task<Tenant?> LoadAsync(string id, RefreshAheadEntry<Tenant>? stale, CancellationToken cancellationToken)
    {
        var version = Volatile.Read(ref _evictions);
        using var scope = _scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        _model ??= db.Model;
        var tenant = await ById(db, id, cancellationToken);
        if (tenant is null)
        {
            _cache.Remove(id);
        }
        else if (_refresher.RenewIfUnchanged(stale, tenant, version) is { } kept)
        {
            return kept;
        }
        else
        {
            Keep(id, tenant, version);
        }

        return tenant;
    }

    /// <summary>Reads tenants in use again, many per query.</summary>
    private async Task<IReadOnlyDictionary<string, Tenant>> LoadAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        using var scope = _scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        _model ??= db.Model;
        var rows = await db.Tenants.AsNoTracking().Where(t => ids.Contains(t.Id)).ToListAsync(cancellationToken);
        return rows.ToDictionary(t => t.Id, StringComparer.Ordinal);
    }

    private void Apply(string id, RefreshAheadEntry<Tenant> entry, Tenant? tenant, long version)
    {
        if (tenant is null)
        {
            _cache.Remove(id);
        }
        else if (!Keep(id, tenant, version))
        {
            // Not kept (an eviction raced with the read): a later request may queue it again.
            entry.RefreshFailed();
        }
    }

    /// <summary>Keeps a tenant read when the eviction count was <paramref name="version"/>, unless an eviction happened since.</summary>
    private bool Keep(string id, Tenant tenant, long version)
    {
        // ES256 or RS256: the literal of the same value, one copy for every tenant.
        tenant.AccessTokenAlgorithm = Policy.LiteralStrings.Of(tenant.AccessTokenAlgorithm);
        return _refresher.Keep(_cache, id, tenant, version, Retention);
    }

    /// <summary>Forgets a changed or deleted tenant, on every replica.</summary>
    public Task EvictAsync(string id)
    {
        Forget(id);
        return _bus.PublishAsync(Channel, id);
    }

    private void Forget(string id)
    {
        Interlocked.Increment(ref _evictions);
        _cache.Remove(id);
    }

    public void Dispose() => _cache.Dispose();
}
