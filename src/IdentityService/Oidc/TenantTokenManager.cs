using Microsoft.EntityFrameworkCore;
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
    Data.IdentityDb db)
    : OpenIddictTokenManager<TenantToken>(cache, logger, options, store)
{
    public override async ValueTask<long> RevokeByAuthorizationIdAsync(string identifier, CancellationToken cancellationToken = default)
    {
        var count = await base.RevokeByAuthorizationIdAsync(identifier, cancellationToken);
        if (!Guid.TryParse(identifier, out var id))
        {
            return count;
        }

        // Unconditionally: every refresh rewrites the family's concurrency token, so OpenIddict's TryRevokeAsync (a
        // write conditioned on the token this request read) lost to a refresh made meanwhile, and the family lived
        // on: a thief refreshing back to back outran the reuse detection, and a revocation answered 200 for nothing.
        await db.InTurnAsync(
            c => db.Authorizations.Where(a => a.Id == id && a.Status != OpenIddictConstants.Statuses.Revoked)
                .ExecuteUpdateAsync(s => s.SetProperty(a => a.Status, OpenIddictConstants.Statuses.Revoked)
                    .SetProperty(a => a.ConcurrencyToken, Guid.NewGuid().ToString()), c),
            cancellationToken);
        if (db.Authorizations.Local.FirstOrDefault(a => a.Id == id) is { } tracked)
        {
            await db.Entry(tracked).ReloadAsync(cancellationToken);
        }

        return count;
    }
}
