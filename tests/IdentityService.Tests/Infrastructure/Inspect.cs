using IdentityService.Data;
using IdentityService.Audit;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Infrastructure;

/// <summary>Reads what the service stored, as a tenant admin would see it in its logs.</summary>
public static class Inspect
{
    /// <summary>A service scope acting for a tenant, as the service opens one: its queries see that tenant's rows.</summary>
    public static async Task<IServiceScope> TenantScopeAsync(this IdentityServiceFactory factory, string tenant)
    {
        var tenants = factory.Services.GetRequiredService<TenantDirectory>();
        var found = await tenants.FindAsync(tenant, CancellationToken.None) ?? throw new InvalidOperationException($"No tenant {tenant}.");
        return factory.Services.GetRequiredService<IServiceScopeFactory>().CreateTenantScope(found);
    }

    /// <summary>The tenant's sign-in attempts in its audit log, oldest first.</summary>
    public static async Task<List<AuditEvent>> SignInEventsAsync(this IdentityServiceFactory factory, string tenant)
    {
        using var scope = await factory.TenantScopeAsync(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        return await db.Set<AuditEvent>().AsNoTracking().Where(e => e.Type.StartsWith("signin.")).OrderBy(e => e.Id).ToListAsync();
    }
}
