using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;

namespace IdentityService.Management;

public static class ManagementSetup
{
    public static IServiceCollection AddManagement(this IServiceCollection services)
    {
        services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, ManagementAuthenticationHandler>(ManagementAuthenticationHandler.SchemeName, null);
        services.AddSingleton<TenantErasure>();
        Webhooks.WebhooksSetup.AddWebhooks(services);
        services.AddOpenApi();
        return services;
    }

    /// <summary>
    /// An error the management API's routes do not write themselves (no such route: 404; a method the route does
    /// not take: 405) is problem+json as every other error there, not an empty body.
    /// </summary>
    public static IApplicationBuilder UseManagementErrorBodies(this IApplicationBuilder app) =>
        app.UseWhen(
            context => context.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal),
            branch => branch.UseStatusCodePages());

    public static IEndpointRouteBuilder MapManagement(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api/v1").WithTags("Management").DisableAntiforgery();
        api.MapTenants();
        api.MapClients();
        api.MapUsers();
        api.MapUserAccess();
        Mfa.MfaApi.MapMfa(api);
        Policy.PolicyApi.MapPolicy(api);
        Protection.ProtectionApi.MapProtection(api);
        Audit.AuditApi.MapAudit(api);
        Webhooks.WebhooksApi.MapWebhooks(api);
        Webhooks.WebhookDeliveriesApi.MapWebhookDeliveries(api);
        api.MapExport();
        return endpoints;
    }
}
