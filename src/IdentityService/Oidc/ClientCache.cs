using IdentityService.Protection;
using IdentityService.Tenancy;
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

    internal const int SizeLimit = 50_000;

    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = SizeLimit });
    private readonly IInvalidationBus _bus;
    private long _evictions;

    public ClientCache(IInvalidationBus bus)
    {
        _bus = bus;
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

    public bool TryGet(string tenantId, string clientId, out TenantApplication? client) =>
        _cache.TryGetValue(new Key(tenantId, clientId), out client) && client is not null;

    /// <summary>
    /// Keeps a client loaded (without tracking) when <see cref="Version"/> was <paramref name="version"/>, unless
    /// an eviction happened since; returns it, marked read-only.
    /// </summary>
    internal TenantApplication Add(string tenantId, string clientId, TenantApplication client, long version)
    {
        if (client.TenantId != tenantId || !string.Equals(client.ClientId, clientId, StringComparison.Ordinal))
        {
            throw new InvalidOperationException("A client is cached under another tenant or client id than its own.");
        }

        client.IsSharedSnapshot = true;
        var key = new Key(tenantId, clientId);
        if (Version != version)
        {
            return client;
        }

        _cache.Set(key, client, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Ttl });

        // An eviction between the check above and the Set: it may have run before the entry existed.
        if (Version != version)
        {
            _cache.Remove(key);
        }

        return client;
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
