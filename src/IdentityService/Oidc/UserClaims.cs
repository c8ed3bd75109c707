using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using IdentityService.Data;
using IdentityService.Users;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>Builds the claims of a user's tokens and of the userinfo answer from the user's current profile.</summary>
/// <remarks>
/// Roles are read as the user store reads them (the names of the tenant's roles linked to the user), from the
/// request's context: a <c>UserManager</c> (with its store, validators and metrics) made for that on every code
/// exchange and refresh was half a percent of a refresh's samples, and most ask for no roles.
/// </remarks>
public sealed class UserClaims(IdentityDb db)
{
    // A claim's destinations as OpenIddict's SetDestinations stores them: a JSON array in the claim's properties.
    private static readonly string ToBothTokens = JsonSerializer.Serialize(new[] { Destinations.AccessToken, Destinations.IdentityToken });
    private static readonly string ToIdentityToken = JsonSerializer.Serialize(new[] { Destinations.IdentityToken });

    /// <summary>The claims the granted scopes allow, as a name to value map (the userinfo answer).</summary>
    public async Task<Dictionary<string, object>> ForScopesAsync(UserProfile user, IEnumerable<string> scopes)
    {
        var granted = scopes.ToHashSet(StringComparer.Ordinal);
        var claims = new Dictionary<string, object>(StringComparer.Ordinal) { [Claims.Subject] = user.Id.ToString() };
        if (granted.Contains(Scopes.Profile))
        {
            AddIfSet(claims, Claims.Name, user.Name);
            AddIfSet(claims, Claims.GivenName, user.GivenName);
            AddIfSet(claims, Claims.FamilyName, user.FamilyName);
            AddIfSet(claims, Claims.Locale, user.Locale);
            claims[Claims.UpdatedAt] = (user.UpdatedAt ?? user.CreatedAt).ToUnixTimeSeconds();
        }

        if (granted.Contains(Scopes.Email) && user.Email is not null)
        {
            claims[Claims.Email] = user.Email;
            claims[Claims.EmailVerified] = user.EmailConfirmed;
        }

        if (granted.Contains(Scopes.Phone) && user.PhoneNumber is not null)
        {
            claims[Claims.PhoneNumber] = user.PhoneNumber;
            claims[Claims.PhoneNumberVerified] = user.PhoneNumberConfirmed;
        }

        // Roles also travel with the manage scope: the management API admits a user's token by its admin role.
        if (granted.Contains(Scopes.Roles) || granted.Contains(Clients.ManageScope))
        {
            var roles = await db.UserRoles.Where(link => link.UserId == user.Id)
                .Join(db.Roles, link => link.RoleId, role => role.Id, (_, role) => role.Name)
                .OfType<string>()
                .ToListAsync();
            if (roles.Count > 0)
            {
                claims[Claims.Role] = roles.ToArray();
            }
        }

        return claims;
    }

    /// <summary>
    /// The principal OpenIddict signs in: the user's claims for the granted scopes, each sent to the ID token,
    /// and the subject and roles to the access token as well.
    /// </summary>
    /// <param name="methods">How the user signed in (RFC 8176 <c>amr</c> values), from the session: sent in the ID token.</param>
    /// <param name="sessionId">The browser session the user signed in with (<c>sid</c>): sent in the ID token, and kept by the sign-in's authorization.</param>
    public async Task<ClaimsPrincipal> CreatePrincipalAsync(
        UserProfile user, IReadOnlyCollection<string> scopes, IEnumerable<string> resources, DateTimeOffset? authTime, IEnumerable<string>? methods = null, string? sessionId = null)
    {
        var identity = new ClaimsIdentity(
            authenticationType: "IdentityService", nameType: Claims.Name, roleType: Claims.Role);
        foreach (var (type, value) in await ForScopesAsync(user, scopes))
        {
            switch (value)
            {
                case string[] values:
                    foreach (var item in values)
                    {
                        identity.AddClaim(new Claim(type, item));
                    }

                    break;
                case bool flag:
                    identity.AddClaim(new Claim(type, flag ? "true" : "false", ClaimValueTypes.Boolean));
                    break;
                case long number:
                    identity.AddClaim(new Claim(type, number.ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64));
                    break;
                default:
                    identity.AddClaim(new Claim(type, value.ToString()!));
                    break;
            }
        }

        if (authTime is not null)
        {
            identity.AddClaim(new Claim(Claims.AuthenticationTime, authTime.Value.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64));
        }

        foreach (var method in methods ?? [])
        {
            identity.AddClaim(new Claim(Claims.AuthenticationMethodReference, method));
        }

        if (!string.IsNullOrEmpty(sessionId))
        {
            identity.AddClaim(new Claim(SignIn.Session.SessionIdClaim, sessionId));
        }

        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(scopes);
        principal.SetResources(resources);
        foreach (var claim in identity.Claims)
        {
            // One string per set of destinations, instead of an array serialized for each claim.
            claim.Properties[Properties.Destinations] = claim.Type is Claims.Subject or Claims.Role ? ToBothTokens : ToIdentityToken;
        }

        return principal;
    }

    private static void AddIfSet(Dictionary<string, object> claims, string type, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            claims[type] = value;
        }
    }
}
