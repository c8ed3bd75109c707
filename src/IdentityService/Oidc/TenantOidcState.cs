using IdentityService.Tenancy;
using OpenIddict.Server;

namespace IdentityService.Oidc;

/// <summary>
/// One tenant's OpenID Connect state: its OpenIddict options (issuer inferred from the path base,
/// its keys and lifetimes), its key set, and its discovery document and JWKS as rendered from them. Built once
/// and cached; a request carries it as a feature.
/// </summary>
public sealed class TenantOidcState(Tenant tenant, OpenIddictServerOptions options, TenantKeySet keys)
{
    public Tenant Tenant { get; } = tenant;

    public OpenIddictServerOptions Options { get; } = options;

    public TenantKeySet Keys { get; } = keys;

    /// <summary>The discovery document and JWKS OpenIddict rendered from these options, kept while this state lives.</summary>
    public DiscoveryDocuments Documents { get; } = new();
}
