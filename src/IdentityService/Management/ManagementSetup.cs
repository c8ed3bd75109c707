using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;

namespace IdentityService.Management;

public static class ManagementSetup
{
    public static IServiceCollection AddManagement(this IServiceCollection services)
    {
        services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, ManagementAuthenticationHandler>(ManagementAuthenticationHandler.SchemeName, null);
        services.AddSingleton<TenantErasure>();
        services.AddOpenApi();
        return services;
    }

    public static IEndpointRouteBuilder MapManagement(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1").WithTags("Management").DisableAntiforgery();
        api.MapTenants();
        api.MapClients();
        api.MapUsers();
        Policy.PolicyApi.MapPolicy(api);
        Protection.ProtectionApi.MapProtection(api);
        return endpoints;
    }
}
