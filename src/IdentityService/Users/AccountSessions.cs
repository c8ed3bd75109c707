using IdentityService.SignIn;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace IdentityService.Users;

/// <summary>
/// Ends every sign-in of an account but the one making the request: the account's security stamp changes (so
/// every session cookie, remembered browser and reset link made before stops working), its grants are revoked
/// (refresh tokens, and the access tokens of those sign-ins) and sign-ins at their second step end; the requesting
/// browser's session is renewed with the new stamp, keeping its sign-in time, methods and expiry.
/// </summary>
public sealed class AccountSessions(
    UserManager<AppUser> users, IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens, TenantContext tenant, Data.IdentityDb db)
{
    /// <summary>
    /// Ends every sign-in of the account (an admin signed it out, or disabled it): its sessions and remembered
    /// browsers (the security stamp), its grants and the second-step challenges of sign-ins under way; and, unless
    /// kept, its reset links.
    /// </summary>
    public async Task EndAllAsync(AppUser user, CancellationToken cancellationToken, bool keepResetLinks = false)
    {
        await users.UpdateSecurityStampAsync(user);
        await UserSecurity.RevokeGrantsAsync(user, authorizations, tokens);
        await db.InTurnAsync(c => db.Set<Mfa.MfaChallenge>().Where(t => t.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);
        if (!keepResetLinks)
        {
            await db.InTurnAsync(c => db.Set<PasswordResetToken>().Where(t => t.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);
        }
    }

    public async Task EndOthersAsync(AppUser user, HttpContext http)
    {
        await users.UpdateSecurityStampAsync(user);
        await UserSecurity.RevokeGrantsAsync(user, authorizations, tokens);
        // A sign-in elsewhere at its second step (the password known, a code perhaps too) ends with the others.
        await db.InTurnAsync(c => db.Set<Mfa.MfaChallenge>().Where(t => t.UserId == user.Id).ExecuteDeleteAsync(c), http.RequestAborted);
        var current = await http.AuthenticateAsync(Session.Scheme);
        if (current is { Succeeded: true, Principal: { } session } && session.FindFirst("sub")?.Value == user.Id.ToString())
        {
            var renewed = Session.Renew(session, user, tenant.Required.Id);
            // The same sign-in: it ends when it would have ended.
            await http.SignInAsync(Session.Scheme, renewed, new AuthenticationProperties(new Dictionary<string, string?> { [Session.RenewedItem] = "1" })
            {
                IssuedUtc = current.Properties?.IssuedUtc,
                ExpiresUtc = current.Properties?.ExpiresUtc,
            });
        }
    }
}
