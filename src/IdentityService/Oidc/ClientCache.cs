using IdentityService.Data;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Oidc;

/// <summary>
/// The tenants' clients (OpenIddict applications) in memory, keyed by (tenant, client id), so that a token
/// request by a known client reads no database. OpenIddict's own entity cache lives for one request only.
/// </summary>
/// <remarks>
/// <para>
/// A change to a client (update, secret rotation, deletion) evicts it at once on this instance and, through the
/// invalidation bus, on the others (with Redis, at once; without Redis each instance is alone, and a change made
/// on another replica is seen within <see cref="Ttl"/>). A change to a tenant (suspension, deletion, any update)
/// evicts all of that tenant's clients. A load that raced with an eviction is not kept, so an eviction is never
/// undone by a read of the row as it was before the change.
/// </para>
/// <para>
/// Refresh ahead: a client in use is read again in the background once its entry is <see cref="RefreshAfter"/>
/// old (many clients per query, <see cref="BatchRefresher{TKey,TValue}"/>), while requests keep using the entry, so
/// that a busy client's token requests never wait for the database; an entry <see cref="Ttl"/> old is never used
/// (ages are the entries' own, read from the injected <see cref="TimeProvider"/>; the memory cache drops entries
/// unused for <see cref="Retention"/>). A client read again unchanged keeps its entry and instance, in the background
/// or on a request past the TTL, so that refreshing many clients, or their coming back after an idle, allocates
/// nothing long-lived.
/// </para>
/// <para>
/// A cached client is one instance shared by concurrent requests: it is read-only. It was loaded without tracking,
/// is marked <see cref="TenantApplication.IsSharedSnapshot"/>, and the service's database context refuses to
/// track it; <see cref="TenantApplicationManager"/> refuses to populate, update or delete it. Code that changes a
/// client loads it with <see cref="TenantApplicationManager.FindForChangeAsync"/>.
/// </para>
/// </remarks>
public sealed class ClientCache : IDisposable
{
    public const string Channel = "client-changed";

    /// <summary>The longest a cached client is kept: the bound on staleness when an invalidation cannot reach an instance.</summary>
    internal static readonly TimeSpan Ttl = TimeSpan.FromSeconds(30);

    /// <summary>The age at which a client in use is read again in the background.</summary>
    internal static readonly TimeSpan RefreshAfter = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How long an entry unused is kept. Past <see cref="Ttl"/> it is never served without a read; it is kept so that a
    /// client back after an idle and found unchanged by that read keeps its instance, rather than leaving the old one,
    /// long-lived, as garbage in the heap's oldest generation. The cost: an idle client's kept entry, about a kilobyte.
    /// </summary>
    internal static readonly TimeSpan Retention = TimeSpan.FromMinutes(10);

    internal const int SizeLimit = 50_000;

    // Compiled once: a client that is not cached, or idle past its TTL, is read on its request's path, and a LINQ query
    // is translated again (its expression tree visited, its cache key computed) at every call.
    // The tenant's query filter still applies, with the context's tenant.
    private static readonly Func<IdentityDb, string, CancellationToken, Task<TenantApplication?>> ByClientId = EF.CompileAsyncQuery(
        (IdentityDb db, string clientId, CancellationToken _) => db.Applications.AsNoTracking().FirstOrDefault(a => a.ClientId == clientId));

    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = SizeLimit });
    private readonly IInvalidationBus _bus;
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _time;
    private readonly BatchRefresher<Key, TenantApplication> _refresher;
    private IModel? _model;
    private long _evictions;

    public ClientCache(IInvalidationBus bus, IServiceScopeFactory scopes, TimeProvider time, ILogger<ClientCache> logger)
    {
        _bus = bus;
        _scopes = scopes;
        _time = time;
        _refresher = new(LoadAsync, (cached, loaded) => _model is { } model && RowEquality.Same(model, cached, loaded), Apply, () => Version, time, logger);
        bus.Subscribe(Channel, message =>
        {
            // "{tenant}/{clientId}": a tenant id never contains '/', a client id may.
            var slash = message.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0)
            {
                Forget(message[..slash], message[(slash + 1)..]);
            }
        });
        bus.Subscribe(TenantDirectory.Channel, ForgetTenant);
    }

    /// <summary>Counts evictions; a load records it first and is kept only if no eviction happened meanwhile.</summary>
    internal long Version => Volatile.Read(ref _evictions);

    /// <summary>The cached client, if its entry is younger than <see cref="Ttl"/>.</summary>
    public bool TryGet(string tenantId, string clientId, out TenantApplication? client)
    {
        client = _cache.TryGetValue(new Key(tenantId, clientId), out RefreshAheadEntry<TenantApplication>? entry) && entry is not null
            && _time.GetUtcNow() - entry.LoadedAt < Ttl ? entry.Value : null;
        return client is not null;
    }

    /// <summary>
    /// The cached client of <paramref name="tenant"/>, if its entry is younger than <see cref="Ttl"/>; past
    /// <see cref="RefreshAfter"/>, one caller starts reading it again in the background.
    /// </summary>
    public bool TryGet(Tenant tenant, string clientId, out TenantApplication? client)
    {
        var key = new Key(tenant.Id, clientId);
        client = _cache.TryGetValue(key, out RefreshAheadEntry<TenantApplication>? entry) && entry is not null
            && _refresher.Serve(key, entry, Ttl, RefreshAfter) ? entry.Value : null;
        return client is not null;
    }

    /// <summary>When the cached entry of a client was last read (or found unchanged) in the database; null if none.</summary>
    internal DateTimeOffset? ReadAt(string tenantId, string clientId) =>
        _cache.TryGetValue(new Key(tenantId, clientId), out RefreshAheadEntry<TenantApplication>? entry) ? entry?.LoadedAt : null;

    /// <summary>Reads a client of the context's tenant (the query filter applies), without tracking: the instance outlives the context.</summary>
    internal static async Task<TenantApplication?> LoadAsync(IdentityDb db, string clientId, CancellationToken cancellationToken)
    {
        // The ordinal comparison is OpenIddict's own, for databases whose collation ignores case.
        var loaded = await ByClientId(db, clientId, cancellationToken);
        return loaded is not null && string.Equals(loaded.ClientId, clientId, StringComparison.Ordinal) ? loaded : null;
    }

    /// <summary>Reads clients again, many per query: their tenants' filters are set aside, and each row is matched to its (tenant, client id).</summary>
    private async Task<IReadOnlyDictionary<Key, TenantApplication>> LoadAsync(IReadOnlyList<Key> keys, CancellationToken cancellationToken)
    {
        var tenantIds = keys.Select(k => k.TenantId).Distinct().ToList();
        var clientIds = keys.Select(k => k.ClientId).Distinct().ToList();
        using var scope = _scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        _model ??= db.Model;
        var rows = await db.Applications.IgnoreQueryFilters().AsNoTracking()
            .Where(a => tenantIds.Contains(a.TenantId) && clientIds.Contains(a.ClientId!))
            .ToListAsync(cancellationToken);
        var wanted = keys.ToHashSet();
        var found = new Dictionary<Key, TenantApplication>();
        foreach (var row in rows)
        {
            // Ordinal, as OpenIddict compares client ids (a database collation may ignore case).
            var key = new Key(row.TenantId, row.ClientId!);
            if (wanted.Contains(key))
            {
                found[key] = row;
            }
        }

        return found;
    }

    private void Apply(Key key, RefreshAheadEntry<TenantApplication> entry, TenantApplication? loaded, long version)
    {
        if (loaded is not null)
        {
            // The batch read that gave this row recorded the model.
            Add(key.TenantId, key.ClientId, loaded, version, _model!);
            if (!_cache.TryGetValue(key, out RefreshAheadEntry<TenantApplication>? kept) || kept?.Value != loaded)
            {
                // Not kept (an eviction raced with the read): a later request may queue it again.
                entry.RefreshFailed();
            }
        }
        else if (_cache.TryGetValue(key, out RefreshAheadEntry<TenantApplication>? current) && current == entry)
        {
            // Deleted meanwhile (by hand, or on a replica that could not tell this one).
            _cache.Remove(key);
        }
    }

    /// <summary>
    /// Keeps a client loaded (without tracking) when <see cref="Version"/> was <paramref name="version"/>, unless
    /// an eviction happened since; returns it, marked read-only. If its entry past the TTL holds the same row, that
    /// entry is renewed and its instance returned instead.
    /// </summary>
    internal TenantApplication Add(string tenantId, string clientId, TenantApplication client, long version, IModel model)
    {
        if (client.TenantId != tenantId || !string.Equals(client.ClientId, clientId, StringComparison.Ordinal))
        {
            throw new InvalidOperationException("A client is cached under another tenant or client id than its own.");
        }

        var key = new Key(tenantId, clientId);
        _model ??= model;
        if (_cache.TryGetValue(key, out RefreshAheadEntry<TenantApplication>? stale) && _refresher.RenewIfUnchanged(stale, client, version) is { } kept)
        {
            return kept;
        }

        ShareCommonValues(client);
        client.IsSharedSnapshot = true;
        _refresher.Keep(_cache, key, client, version, Retention);
        return client;
    }

    /// <summary>
    /// The values that clients of many tenants have alike (their types, and their permissions, requirements and settings
    /// as the JSON OpenIddict stores): one copy for every cached client, where 10,000 alike clients kept 10,000 (about
    /// 330 bytes each in the benchmark's). None of them is a secret.
    /// </summary>
    private static readonly SharedValues<string> CommonValues = new();

    private static void ShareCommonValues(TenantApplication client)
    {
        client.ApplicationType = Common(client.ApplicationType);
        client.ClientType = Common(client.ClientType);
        client.ConsentType = Common(client.ConsentType);
        client.Permissions = Common(client.Permissions);
        client.Requirements = Common(client.Requirements);
        client.Settings = Common(client.Settings);

        static string? Common(string? value) => value is null ? null : CommonValues.Share(value, value);
    }

    /// <summary>A client read on a request's path and not found: its entry past the TTL, if any, is dropped (it was never served).</summary>
    internal void Gone(string tenantId, string clientId)
    {
        var key = new Key(tenantId, clientId);
        if (_cache.TryGetValue(key, out RefreshAheadEntry<TenantApplication>? stale) && stale is not null && _time.GetUtcNow() - stale.LoadedAt >= Ttl)
        {
            _cache.Remove(key);
        }
    }

    /// <summary>Forgets a changed, rotated or deleted client, here and on every replica.</summary>
    public Task EvictAsync(string tenantId, string clientId)
    {
        Forget(tenantId, clientId);
        return _bus.PublishAsync(Channel, $"{tenantId}/{clientId}");
    }

    private void Forget(string tenantId, string clientId)
    {
        Interlocked.Increment(ref _evictions);
        _cache.Remove(new Key(tenantId, clientId));
    }

    private void ForgetTenant(string tenantId)
    {
        Interlocked.Increment(ref _evictions);
        foreach (var key in _cache.Keys)
        {
            if (key is Key { TenantId: var owner } && owner == tenantId)
            {
                _cache.Remove(key);
            }
        }
    }

    public void Dispose() => _cache.Dispose();

    private sealed record Key(string TenantId, string ClientId);
}
