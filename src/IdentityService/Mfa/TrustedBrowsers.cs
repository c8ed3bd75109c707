using IdentityService.Data;
using IdentityService.Protection;
using IdentityService.SignIn;
using IdentityService.Users;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Mfa;

/// <summary>
/// Browsers where the person chose not to be asked the second step again, where the tenant allows it
/// (<c>mfa.rememberBrowserDays</c>): a cookie holding a random 256-bit token, its SHA-256 stored with the account's
/// security stamp. The trust ends with the days, with a new password, when the person or an admin forgets the
/// account's browsers, and with the account's second factors.
/// </summary>
public sealed class TrustedBrowsers(IdentityDb db, TimeProvider time)
{
    public const string CookieName = ".IdentityService.TrustedBrowser";

    /// <summary>Remembers this browser for the account for <paramref name="days"/> days.</summary>
    public async Task RememberAsync(HttpContext http, AppUser user, int days, CancellationToken cancellationToken)
    {
        if (days <= 0)
        {
            return;
        }

        var token = OpaqueTokens.New();
        var now = time.GetUtcNow();
        await db.InTurnAsync(c => db.Set<TrustedBrowser>().Where(b => b.UserId == user.Id && b.ExpiresAt <= now).ExecuteDeleteAsync(c), cancellationToken);
        db.Add(new TrustedBrowser
        {
            Id = Guid.NewGuid(),
            UserId = user.Id,
            TokenHash = OpaqueTokens.Hash(token),
            Stamp = user.SecurityStamp ?? "",
            CreatedAt = now,
            ExpiresAt = now.AddDays(days),
        });
        await db.SaveChangesAsync(cancellationToken);
        http.Response.Cookies.Append(CookieName, token, TenantCookies.Options(http.Request, SameSiteMode.Lax, now.AddDays(days)));
    }

    /// <summary>Whether this browser is one the account trusts now (unexpired, and from before no new password).</summary>
    public async Task<bool> IsTrustedAsync(HttpContext http, AppUser user, CancellationToken cancellationToken)
    {
        var token = http.Request.Cookies[CookieName];
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return false;
        }

        var hash = OpaqueTokens.Hash(token);
        var now = time.GetUtcNow();
        var stamp = user.SecurityStamp ?? "";
        return await db.Set<TrustedBrowser>().AnyAsync(b => b.TokenHash == hash && b.UserId == user.Id && b.ExpiresAt > now && b.Stamp == stamp, cancellationToken);
    }

    /// <summary>How many browsers the account trusts now.</summary>
    public Task<int> CountAsync(AppUser user, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var stamp = user.SecurityStamp ?? "";
        return db.Set<TrustedBrowser>().CountAsync(b => b.UserId == user.Id && b.ExpiresAt > now && b.Stamp == stamp, cancellationToken);
    }

    /// <summary>Ends the trust of every browser of the account: each is asked the second step again.</summary>
    public Task<int> ForgetAllAsync(AppUser user, CancellationToken cancellationToken) =>
        db.InTurnAsync(c => db.Set<TrustedBrowser>().Where(b => b.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);
}
