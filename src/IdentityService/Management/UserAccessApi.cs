using IdentityService.Audit;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;

namespace IdentityService.Management;

/// <summary>
/// What reaches a user's account: <c>/api/v1/tenants/{tenant}/users/{userId}/apps</c>, the clients with access to it
/// (a consent, or a sign-in whose tokens may still be valid) and the removal of one's access, as the person sees
/// them on <c>/account/apps</c>; and <c>POST .../signout</c>, which ends every session and grant of the account.
/// </summary>
internal static class UserAccessApi
{
    public static RouteGroupBuilder MapUserAccess(this RouteGroupBuilder api)
    {
        var user = api.MapGroup("/tenants/{tenant}/users/{userId}").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        user.MapGet("/apps", ListAsync);
        user.MapDelete("/apps/{clientId}", RevokeAsync);
        user.MapPost("/signout", SignOutAsync);
        return api;
    }

    /// <summary>
    /// Signs the user out everywhere (a lost phone, a shared computer, an incident): every session and remembered
    /// browser, refresh and access token and second-step challenge of the account ends at once. The account stays
    /// usable: its owner signs in again with the password.
    /// </summary>
    private static async Task<IResult> SignOutAsync(HttpContext http, string userId, UserManager<AppUser> users, AccountSessions sessions, AuditLog audit)
    {
        var user = await UsersApi.FindAsync(users, userId);
        if (user is null)
        {
            return UsersApi.UserNotFound();
        }

        await sessions.EndAllAsync(user, CancellationToken.None, keepResetLinks: true);
        await audit.AdminActionAsync(http, AuditEventTypes.UserSessionsEnded, userId: user.Id, details: new { kept = "none" });
        return Results.NoContent();
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
