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
    private Tenant _tenant = tenant;

    public Tenant Tenant => Volatile.Read(ref _tenant);

    /// <summary>
    /// Holds <paramref name="same"/>, the tenant directory's newer instance of the same version (read again after its
    /// entry expired, unchanged), so that the two copies are not both kept while this state lives.
    /// </summary>
    internal void Follow(Tenant same)
    {
        if (same.Id != _tenant.Id || same.Version != _tenant.Version)
        {
            throw new InvalidOperationException("A tenant's OpenID Connect state follows only its own tenant, unchanged.");
        }

        Volatile.Write(ref _tenant, same);
    }

    public OpenIddictServerOptions Options { get; } = options;

    public TenantKeySet Keys { get; } = keys;

    /// <summary>The discovery document and JWKS OpenIddict rendered from these options, kept while this state lives.</summary>
    public DiscoveryDocuments Documents { get; } = new();
}
