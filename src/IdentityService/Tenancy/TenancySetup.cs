namespace IdentityService.Tenancy;

public static class TenancySetup
{
    public static IServiceCollection AddTenancy(this IServiceCollection services)
    {
        services.AddScoped<TenantContext>();
        services.AddSingleton<TenantDirectory>();
        return services;
    }

    /// <summary>Resolves <c>/t/{tenant}</c> before routing, so that pages and OpenIddict see the tenant's path base.</summary>
    public static IApplicationBuilder UseTenancy(this IApplicationBuilder app) => app.UseMiddleware<TenantResolutionMiddleware>();
}

public static class TenantScopes
{
    /// <summary>A new service scope that acts for one tenant: every query in it is filtered by that tenant.</summary>
    public static IServiceScope CreateTenantScope(this IServiceScopeFactory scopes, Tenant tenant)
    {
        var scope = scopes.CreateScope();
        scope.ServiceProvider.GetRequiredService<TenantContext>().Set(tenant);
        return scope;
    }
}
