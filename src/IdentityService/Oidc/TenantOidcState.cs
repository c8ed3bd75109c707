using IdentityService.Tenancy;
using OpenIddict.Server;

namespace IdentityService.Oidc;

/// <summary>
/// One tenant's OpenID Connect state: its OpenIddict options (issuer inferred from the path base,
/// its keys and lifetimes) and its key set. Built once and cached; a request carries it as a feature.
/// </summary>
public sealed class TenantOidcState(Tenant tenant, OpenIddictServerOptions options, TenantKeySet keys)
{
    public Tenant Tenant { get; } = tenant;

    public OpenIddictServerOptions Options { get; } = options;

    public TenantKeySet Keys { get; } = keys;
}
