using IdentityService.SignIn;
using Microsoft.AspNetCore.Authentication;
using OpenIddict.Server.AspNetCore;

namespace IdentityService.Oidc;

/// <summary>
/// RP-initiated logout: clears the tenant's session cookie, then OpenIddict redirects to the
/// post_logout_redirect_uri it checked against the client's registered list, or to the signed-out page.
/// </summary>
internal static class EndSessionEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext context)
    {
        await context.SignOutAsync(Session.Scheme);
        return Results.SignOut(
            new AuthenticationProperties { RedirectUri = $"{context.Request.PathBase}/logout?done=true" },
            [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
    }
}
