using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace IdentityService.Oidc;

/// <summary>
/// OpenIddict's token manager, where revoking a sign-in's tokens (a replayed code, a reused refresh token)
/// also revokes the sign-in's authorization. Access tokens have no row to revoke (see
/// <see cref="RowlessAccessTokens"/>): they carry their authorization's id instead, and OpenIddict refuses
/// them once that authorization is revoked.
/// </summary>
internal sealed class TenantTokenManager(
    IOpenIddictTokenCache<TenantToken> cache,
    ILogger<OpenIddictTokenManager<TenantToken>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictTokenStore<TenantToken> store,
    IOpenIddictAuthorizationManager authorizations)
    : OpenIddictTokenManager<TenantToken>(cache, logger, options, store)
{
    public override async ValueTask<long> RevokeByAuthorizationIdAsync(string identifier, CancellationToken cancellationToken = default)
    {
        var count = await base.RevokeByAuthorizationIdAsync(identifier, cancellationToken);
        if (await authorizations.FindByIdAsync(identifier, cancellationToken) is { } authorization)
        {
            await authorizations.TryRevokeAsync(authorization, cancellationToken);
        }

        return count;
    }
}
