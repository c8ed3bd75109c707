using System.Globalization;
using System.Security.Claims;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>Builds the claims of a user's tokens and of the userinfo answer from the user's current profile.</summary>
public sealed class UserClaims(UserManager<AppUser> users)
{
    /// <summary>The claims the granted scopes allow, as a name to value map (the userinfo answer).</summary>
    public async Task<Dictionary<string, object>> ForScopesAsync(AppUser user, IEnumerable<string> scopes)
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
            var roles = await users.GetRolesAsync(user);
            if (roles.Count > 0)
            {
                claims[Claims.Role] = roles.ToArray();
            }
        }

        return claims;
    }

    /// <summary>
    /// The principal OpenIddict signs in: the user's claims for the granted scopes, each sent to the ID token,
    /// and the subject, roles and authentication time to the access token as well.
    /// </summary>
    public async Task<ClaimsPrincipal> CreatePrincipalAsync(AppUser user, IReadOnlyCollection<string> scopes, IEnumerable<string> resources, DateTimeOffset? authTime)
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

        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(scopes);
        principal.SetResources(resources);
        principal.SetDestinations(static claim => claim.Type switch
        {
            Claims.Subject or Claims.Role => [Destinations.AccessToken, Destinations.IdentityToken],
            _ => [Destinations.IdentityToken],
        });
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
