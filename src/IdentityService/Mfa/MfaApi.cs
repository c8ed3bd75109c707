using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Management;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Mfa;

/// <summary><c>DELETE /api/v1/tenants/{tenant}/users/{userId}/mfa</c>: an admin removes a user's authenticator app.</summary>
internal static class MfaApi
{
    public static RouteGroupBuilder MapMfa(this RouteGroupBuilder api)
    {
        api.MapGroup("/tenants/{tenant}/users/{userId}/mfa").AddEndpointFilter(new ManagementAccess(systemOnly: false)).MapDelete("", RemoveAsync);
        return api;
    }

    /// <summary>
    /// For a user who lost their authenticator app or passkey: removes their app, passkeys, recovery codes and
    /// remembered browsers, and stops asking them a second factor where the
    /// policy is optional. Where it is required they set up a new one at their next sign-in.
    /// </summary>
    private static async Task<IResult> RemoveAsync(HttpContext http, string userId, UserManager<AppUser> users, IdentityDb db, SecondFactors factors, AuditLog audit)
    {
        var user = await UsersApi.FindAsync(users, userId);
        if (user is null)
        {
            return UsersApi.UserNotFound();
        }

        var removed = await factors.RemoveAsync(user, CancellationToken.None);
        await db.InTurnAsync(c => db.Set<MfaChallenge>().Where(x => x.UserId == user.Id).ExecuteDeleteAsync(c), CancellationToken.None);
        await audit.AdminActionAsync(http, AuditEventTypes.MfaRemoved, userId: user.Id, details: new { authenticatorApp = removed });
        return Results.NoContent();
    }
}
