using IdentityService.Data;
using IdentityService.Pipeline;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Infrastructure;

/// <summary>Reads what the service stored, as a tenant admin would see it in its logs.</summary>
public static class Inspect
{
    public static async Task<List<SignInEvent>> SignInEventsAsync(this IdentityServiceFactory factory, string tenant)
    {
        using var scope = factory.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        scope.ServiceProvider.GetRequiredService<TenantContext>().Set(await db.Tenants.AsNoTracking().SingleAsync(t => t.Id == tenant));
        return await db.Set<SignInEvent>().AsNoTracking().OrderBy(e => e.Time).ThenBy(e => e.Id).ToListAsync();
    }
}
