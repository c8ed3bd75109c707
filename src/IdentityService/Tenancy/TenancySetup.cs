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
