using IdentityService.Data;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Oidc;

/// <summary>
/// A revoked access token that has no row in the token store (a client-credentials token, issued without
/// a write), kept by its <c>jti</c> until it would have expired anyway.
/// </summary>
public sealed class RevokedToken : ITenantOwned
{
    public string TenantId { get; set; } = "";

    public required string TokenId { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>The list of revoked row-less access tokens, in the current tenant.</summary>
public sealed class RevokedTokens(IdentityDb db, TimeProvider time)
{
    public async Task RevokeAsync(string tokenId, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await db.Set<RevokedToken>().Where(t => t.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken);
        if (!await db.Set<RevokedToken>().AnyAsync(t => t.TokenId == tokenId, cancellationToken))
        {
            db.Add(new RevokedToken { TokenId = tokenId, ExpiresAt = expiresAt });
            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException)
            {
                // Revoked twice at once: it is revoked.
            }
        }
    }

    public Task<bool> IsRevokedAsync(string tokenId, CancellationToken cancellationToken) =>
        db.Set<RevokedToken>().AnyAsync(t => t.TokenId == tokenId, cancellationToken);
}
