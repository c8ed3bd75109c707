using IdentityService.Data;
using IdentityService.Users;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>The userinfo endpoint: the user's current profile, limited to the scopes of the access token.</summary>
internal static class UserInfoEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext context, IdentityDb db, UserClaims claims)
    {
        var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var user = await UserProfiles.FindAsync(db, result.Principal?.GetClaim(Claims.Subject), context.RequestAborted);
        if (user is null)
        {
            return Results.Challenge(
                new AuthenticationProperties(new Dictionary<string, string?>
                {
                    [OpenIddictServerAspNetCoreConstants.Properties.Error] = Errors.InvalidToken,
                    [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = "The user of this token no longer exists.",
                }),
                [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
        }

        return Results.Json(await claims.ForScopesAsync(user, result.Principal!.GetScopes()));
    }
}
