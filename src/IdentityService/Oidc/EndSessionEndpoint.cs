using IdentityService.SignIn;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Primitives;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>
/// RP-initiated logout. With an id_token_hint naming the signed-in user it clears the tenant's session at
/// once (and tells the session's clients, <see cref="BackchannelLogout"/>); without one, any page could sign a
/// person out (an image tag would do), so the person confirms on the sign-out page first. Then OpenIddict
/// redirects to the post_logout_redirect_uri it checked against the client's registered list, or to the
/// signed-out page.
/// </summary>
internal static class EndSessionEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext context)
    {
        var request = context.GetOpenIddictServerRequest();
        if (request is null)
        {
            return Results.NotFound();
        }

        var session = await context.GetSessionAsync();
        if (session is not null)
        {
            var hint = (await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal;
            if (hint?.GetClaim(Claims.Subject) is not { } subject || subject != session.FindFirst("sub")?.Value)
            {
                var parameters = request.GetParameters().Select(p => new KeyValuePair<string, StringValues>(p.Key, (StringValues)p.Value));
                var returnUrl = context.Request.PathBase + context.Request.Path + QueryString.Create(parameters);
                return Results.Redirect($"{context.Request.PathBase}/logout?ReturnUrl={Uri.EscapeDataString(returnUrl)}");
            }

            await context.EndSessionAsync();
        }

        return Results.SignOut(
            new AuthenticationProperties { RedirectUri = $"{context.Request.PathBase}/logout?done=true" },
            [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
    }
}
