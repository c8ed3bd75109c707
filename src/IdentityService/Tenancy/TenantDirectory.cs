using IdentityService.Data;
using IdentityService.Protection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Tenancy;

/// <summary>
/// Finds tenants by id for every tenant-scoped request. Tenants are cached for a short time and evicted at once
/// on a change, here and (through the invalidation bus, so with Redis on every replica) on the others; without
/// Redis, a change made on another replica is seen within <see cref="Ttl"/>.
/// </summary>
public sealed class TenantDirectory : IDisposable
{
    public const string Channel = "tenant-changed";

    internal static readonly TimeSpan Ttl = TimeSpan.FromSeconds(30);

    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 100_000 });
    private readonly IServiceScopeFactory _scopes;
    private readonly IInvalidationBus _bus;

    public TenantDirectory(IServiceScopeFactory scopes, IInvalidationBus bus)
    {
        _scopes = scopes;
        _bus = bus;
        bus.Subscribe(Channel, id => _cache.Remove(id));
    }

    public async ValueTask<Tenant?> FindAsync(string id, CancellationToken cancellationToken)
    {
        if (!TenantIds.IsValid(id))
        {
            return null;
        }

        if (_cache.TryGetValue(id, out Tenant? tenant))
        {
            return tenant;
        }

        using var scope = _scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == id, cancellationToken);
        if (tenant is not null)
        {
            _cache.Set(id, tenant, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Ttl });
        }

        return tenant;
    }

    /// <summary>Forgets a changed or deleted tenant, on every replica.</summary>
    public Task EvictAsync(string id)
    {
        _cache.Remove(id);
        return _bus.PublishAsync(Channel, id);
    }

    public void Dispose() => _cache.Dispose();
}
