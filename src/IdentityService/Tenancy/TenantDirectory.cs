using IdentityService.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Tenancy;

/// <summary>
/// Finds tenants by id for every tenant-scoped request. Tenants are cached for a short time
/// (a change made on another replica is seen within <see cref="Ttl"/>) and evicted at once on a local change.
/// </summary>
public sealed class TenantDirectory(IServiceScopeFactory scopes) : IDisposable
{
    internal static readonly TimeSpan Ttl = TimeSpan.FromSeconds(30);

    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 100_000 });

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

        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == id, cancellationToken);
        if (tenant is not null)
        {
            _cache.Set(id, tenant, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Ttl });
        }

        return tenant;
    }

    public void Evict(string id) => _cache.Remove(id);

    public void Dispose() => _cache.Dispose();
}
