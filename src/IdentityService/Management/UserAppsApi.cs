using IdentityService.Audit;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;

namespace IdentityService.Management;

/// <summary>
/// <c>/api/v1/tenants/{tenant}/users/{userId}/apps</c>: the clients with access to a user's account (a consent, or a
/// sign-in whose tokens may still be valid), and the removal of one's access, as the person sees them on
/// <c>/account/apps</c>.
/// </summary>
internal static class UserAppsApi
{
    public static RouteGroupBuilder MapUserApps(this RouteGroupBuilder api)
    {
        var apps = api.MapGroup("/tenants/{tenant}/users/{userId}/apps").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        apps.MapGet("", ListAsync);
        apps.MapDelete("/{clientId}", RevokeAsync);
        return api;
    }

    private static async Task<IResult> ListAsync(HttpContext http, string userId, UserManager<AppUser> users, ConnectedApps apps)
    {
        var user = await UsersApi.FindAsync(users, userId);
        return user is null
            ? UsersApi.UserNotFound()
            : Results.Ok(new { items = await apps.ListAsync(user, http.RequestAborted) });
    }

    /// <summary>Revokes the user's consents and sign-ins at the client: its refresh and access tokens stop working at once.</summary>
    private static async Task<IResult> RevokeAsync(HttpContext http, string userId, string clientId, UserManager<AppUser> users, ConnectedApps apps, AuditLog audit)
    {
        var user = await UsersApi.FindAsync(users, userId);
        if (user is null)
        {
            return UsersApi.UserNotFound();
        }

        if (!(await apps.ListAsync(user, http.RequestAborted)).Any(a => a.ClientId == clientId))
        {
            return Problems.NotFound("app_not_found", "This client has no access to this user's account.");
        }

        var revoked = await apps.RevokeAsync(user, clientId, CancellationToken.None);
        await audit.AdminActionAsync(http, AuditEventTypes.UserAppRevoked, userId: user.Id, clientId: clientId, details: new { client = clientId, revoked });
        return Results.NoContent();
    }
}
