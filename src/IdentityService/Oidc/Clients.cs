using System.Text.Json;
using OpenIddict.Abstractions;

namespace IdentityService.Oidc;

internal static class Clients
{
    /// <summary>The resource every token that carries the <c>manage</c> scope is issued for.</summary>
    public const string ManagementAudience = "urn:identityservice:management";

    public const string ManageScope = "manage";

    /// <summary>
    /// The audiences of an access token: the resources the request names (RFC 8707; OpenIddict has checked
    /// them against the tenant's API resources and the client's permissions), else the client's default
    /// audiences; plus the management API when the <c>manage</c> scope is granted.
    /// </summary>
    /// <returns>The audiences, or null when the request names a resource the tenant does not have.</returns>
    public static List<string>? ResourcesFor(OpenIddictRequest request, object application, IEnumerable<string> scopes, Tenancy.Tenant tenant) =>
        ResourcesFor(request.GetResources(), application, scopes, tenant);

    /// <inheritdoc cref="ResourcesFor(OpenIddictRequest, object, IEnumerable{string}, Tenancy.Tenant)"/>
    public static List<string>? ResourcesFor(IEnumerable<string> requested, object application, IEnumerable<string> scopes, Tenancy.Tenant tenant)
    {
        var resources = requested.ToList();
        if (resources.Any(r => !tenant.ApiResources.Contains(r)))
        {
            return null;
        }

        if (resources.Count == 0 && application is TenantApplication { DefaultAudiences: { Length: > 0 } json })
        {
            resources = JsonSerializer.Deserialize<List<string>>(json) ?? [];
        }

        if (scopes.Contains(ManageScope) && !resources.Contains(ManagementAudience))
        {
            resources.Add(ManagementAudience);
        }

        return resources;
    }
}
