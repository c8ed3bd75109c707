using System.Security.Claims;
using IdentityService.Oidc;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// Codes and refresh tokens carry no personal data (<see cref="SlimInternalTokens"/>): their principals lose the
/// profile claims, an actor's included, and keep the subject and OpenIddict's own claims. The flows through the token
/// endpoint are tested in <see cref="AuthorizationCodeFlowTests"/>.
/// </summary>
public sealed class SlimInternalTokensTests
{
    [Fact]
    public async Task ACodesAndARefreshTokensPrincipals_LoseTheProfile_TheirActorsToo_AndTheAccessTokensKeepsIt()
    {
        var context = new OpenIddictServerEvents.ProcessSignInContext(new OpenIddictServerTransaction())
        {
            Principal = Person(),
            AuthorizationCodePrincipal = Person(),
            RefreshTokenPrincipal = Person(),
            AccessTokenPrincipal = Person(),
        };
        context.RefreshTokenPrincipal.Identities.Single().Actor = new ClaimsIdentity(
            [new Claim(Claims.Subject, "service-7"), new Claim(Claims.Email, "service@acme.test")], "actor");

        await new SlimInternalTokens().HandleAsync(context);

        foreach (var principal in new[] { context.AuthorizationCodePrincipal, context.RefreshTokenPrincipal })
        {
            Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e", principal.GetClaim(Claims.Subject));
            Assert.Equal(["openid", "profile", "email"], principal.GetScopes().ToArray());
            Assert.Equal("7c9e6679-7425-40de-944b-e07fc1f90ae7", principal.GetAuthorizationId());
            Assert.DoesNotContain(principal.Claims, c => c.Type is Claims.Name or Claims.Email or Claims.EmailVerified or Claims.Role);
        }

        var actor = context.RefreshTokenPrincipal.Identities.Single().Actor!;
        Assert.Equal(["service-7"], actor.Claims.Select(c => c.Value));
        // The other principals are not this handler's: the access token's keeps what its destinations give it.
        Assert.Equal("ada@acme.test", context.AccessTokenPrincipal.GetClaim(Claims.Email));
        Assert.Equal("ada@acme.test", context.Principal.GetClaim(Claims.Email));
    }

    private static ClaimsPrincipal Person() =>
        new ClaimsPrincipal(new ClaimsIdentity("IdentityService", Claims.Name, Claims.Role))
            .SetClaim(Claims.Subject, "0f8fad5b-d9cb-469f-a165-70867728950e")
            .SetClaim(Claims.Name, "Ada Lovelace")
            .SetClaim(Claims.Email, "ada@acme.test")
            .SetClaim(Claims.EmailVerified, true)
            .SetClaims(Claims.Role, ["admin"])
            .SetScopes("openid", "profile", "email")
            .SetAuthorizationId("7c9e6679-7425-40de-944b-e07fc1f90ae7");
}
