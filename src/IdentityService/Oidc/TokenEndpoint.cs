using System.Security.Claims;
using IdentityService.Data;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>
/// The token endpoint, after OpenIddict has authenticated the client and validated the grant.
/// A code (authorization or device) or refresh token is exchanged only while its user still exists, with claims rebuilt from
/// the user's current profile; client credentials get a token whose subject is the client.
/// </summary>
internal static class TokenEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext context, IOpenIddictApplicationManager applications, Tenancy.TenantContext tenant)
    {
        var request = context.GetOpenIddictServerRequest();
        if (request is null)
        {
            return Results.NotFound();
        }

        if (request.IsClientCredentialsGrantType())
        {
            var application = await applications.FindByClientIdAsync(request.ClientId!)
                ?? throw new InvalidOperationException("OpenIddict authenticated a client that does not exist.");
            var identity = new ClaimsIdentity("IdentityService", Claims.Name, Claims.Role);
            identity.AddClaim(new Claim(Claims.Subject, request.ClientId!));
            var displayName = await applications.GetDisplayNameAsync(application);
            if (!string.IsNullOrEmpty(displayName))
            {
                identity.AddClaim(new Claim(Claims.Name, displayName));
            }

            var principal = new ClaimsPrincipal(identity);
            var scopes = request.GetScopes();
            principal.SetScopes(scopes);
            var resources = Clients.ResourcesFor(request, application, scopes, tenant.Required);
            if (resources is null)
            {
                return AuthorizationEndpoint.Forbid(Errors.InvalidTarget, "A resource is not one of this tenant's API resources.");
            }

            principal.SetResources(resources);
            principal.SetDestinations(static _ => [Destinations.AccessToken]);
            return Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        if (request.IsAuthorizationCodeGrantType() || request.IsRefreshTokenGrantType() || request.IsDeviceCodeGrantType())
        {
            // Resolved here, not as parameters: a client_credentials grant has no user and needs neither.
            var db = context.RequestServices.GetRequiredService<IdentityDb>();
            var claims = context.RequestServices.GetRequiredService<UserClaims>();
            var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
            var granted = result.Principal;
            var user = granted is null ? null : await TokenFamilies.FindUserAsync(context, db, granted);
            if (granted is null || user is null)
            {
                return AuthorizationEndpoint.Forbid(Errors.InvalidGrant, "The user of this grant no longer exists.");
            }

            DateTimeOffset? authTime = long.TryParse(granted.GetClaim(Claims.AuthenticationTime), out var seconds)
                ? DateTimeOffset.FromUnixTimeSeconds(seconds)
                : null;
            var principal = await claims.CreatePrincipalAsync(user, granted.GetScopes(), granted.GetResources(), authTime, granted.GetClaims(Claims.AuthenticationMethodReference),
                granted.GetClaim(SignIn.Session.SessionIdClaim));
            return Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        if (request.IsTokenExchangeGrantType())
        {
            return await TokenExchange.HandleAsync(context, request, applications, tenant.Required);
        }

        return AuthorizationEndpoint.Forbid(Errors.UnsupportedGrantType, "This grant type is not supported.");
    }
}
