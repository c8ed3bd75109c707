using IdentityService.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace IdentityService.Users;

/// <summary>
/// Deletes a user with what the service keeps about them: their grants are revoked first (no refresh token of
/// theirs works after), then the account (its roles, claims and passkeys go with it), its reset links, second-factor
/// challenges, authenticator, recovery codes, remembered browsers, and the devices and countries it was seen from.
/// The audit log keeps its entries (the tenant's record of what happened).
/// </summary>
public sealed class UserErasure(
    UserManager<AppUser> users, IdentityDb db, IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens)
{
    public async Task<IdentityResult> EraseAsync(AppUser user)
    {
        await UserSecurity.RevokeGrantsAsync(user, authorizations, tokens);
        var result = await users.DeleteAsync(user);
        if (!result.Succeeded)
        {
            return result;
        }

        await DeleteAsync<PasswordResetToken>(x => x.UserId == user.Id);
        await DeleteAsync<Mfa.MfaChallenge>(x => x.UserId == user.Id);
        await DeleteAsync<Mfa.UserAuthenticator>(x => x.UserId == user.Id);
        await DeleteAsync<Mfa.RecoveryCode>(x => x.UserId == user.Id);
        await DeleteAsync<Mfa.TrustedBrowser>(x => x.UserId == user.Id);
        await DeleteAsync<Protection.UserSighting>(x => x.UserId == user.Id);
        return result;
    }

    private Task<int> DeleteAsync<T>(System.Linq.Expressions.Expression<Func<T, bool>> rows) where T : class =>
        db.InTurnAsync(c => db.Set<T>().Where(rows).ExecuteDeleteAsync(c), CancellationToken.None);
}
