using System.Security.Claims;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;

namespace IdentityService.Management;

/// <summary>
/// Guards every management route: a valid token (401 otherwise), then its tenant's reach: the
/// <c>system</c> tenant manages every tenant, any other tenant only itself (403). For routes under
/// <c>/tenants/{tenant}</c> it puts the request's scope in that tenant, so every query is filtered by it.
/// </summary>
internal sealed class ManagementAccess(bool systemOnly) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var result = await http.AuthenticateAsync(ManagementAuthenticationHandler.SchemeName);
        if (!result.Succeeded)
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return Problems.Status(StatusCodes.Status401Unauthorized, "unauthenticated",
                "A valid bearer token with the manage scope is required.", result.Failure?.Message);
        }

        http.User = result.Principal!;
        var callerTenant = result.Principal!.FindFirstValue(ManagementAuthenticationHandler.TenantClaim);
        var isSystem = callerTenant == Tenant.SystemId;
        var target = http.GetRouteValue("tenant") as string;
        if (systemOnly && !isSystem)
        {
            return Problems.Status(StatusCodes.Status403Forbidden, "forbidden", "Only the platform tenant may do this.");
        }

        if (target is not null)
        {
            if (!isSystem && target != callerTenant)
            {
                return Problems.Status(StatusCodes.Status403Forbidden, "forbidden", "A tenant may manage only itself.");
            }

            var tenant = await http.RequestServices.GetRequiredService<TenantDirectory>().FindAsync(target, http.RequestAborted);
            if (tenant is null)
            {
                return Problems.NotFound("tenant_not_found", "No tenant has this id.");
            }

            http.RequestServices.GetRequiredService<TenantContext>().Set(tenant);
        }

        return await next(context);
    }
}
