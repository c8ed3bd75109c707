using System.Buffers.Text;
using System.Security.Claims;
using System.Security.Cryptography;
using IdentityService.Oidc;
using OpenIddict.Abstractions;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// Refresh tokens are sealed with AES-256-GCM under a key of the tenant's (<see cref="SealedRefreshTokens"/>):
/// opaque, whole when opened, bound to their tenant and refused when altered. Their lifetime and the JWT refresh
/// tokens issued before are tested with the token families (<see cref="TokenFamilyTests"/>).
/// </summary>
public sealed class SealedRefreshTokenTests
{
    [Fact]
    public void ASealedPrincipal_OpensWithItsClaimsAndTheirDestinations_OnlyForItsTenant_AndNotOnceAltered()
    {
        var key = NewKey();
        var identity = new ClaimsIdentity("IdentityService", OpenIddictConstants.Claims.Name, OpenIddictConstants.Claims.Role);
        var principal = new ClaimsPrincipal(identity)
            .SetClaim(OpenIddictConstants.Claims.Subject, "0f8fad5b-d9cb-469f-a165-70867728950e")
            .SetClaim(OpenIddictConstants.Claims.AuthenticationTime, "1764900000")
            .SetScopes("openid", "offline_access", "api")
            .SetPresenters("web")
            .SetAuthorizationId("7c9e6679-7425-40de-944b-e07fc1f90ae7")
            .SetExpirationDate(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
        principal.SetDestinations(claim => claim.Type == OpenIddictConstants.Claims.Subject
            ? [OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken]
            : []);

        var token = SealedRefreshTokens.Protect(principal, key, "acme");
        Assert.DoesNotContain('.', token);
        var raw = Base64Url.DecodeFromChars(token);
        Assert.Equal(-1, raw.AsSpan().IndexOf("0f8fad5b"u8));
        Assert.Equal(-1, raw.AsSpan().IndexOf("offline_access"u8));

        var (opened, forged) = SealedRefreshTokens.Unprotect(token, [NewKey(), key], "acme");
        Assert.False(forged);
        Assert.NotNull(opened);
        Assert.Equal(principal.Claims.Select(c => (c.Type, c.Value)), opened.Claims.Select(c => (c.Type, c.Value)));
        Assert.Equal(["openid", "offline_access", "api"], opened.GetScopes().ToArray());
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000), opened.GetExpirationDate());
        Assert.Equal([OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken],
            opened.FindFirst(OpenIddictConstants.Claims.Subject)!.GetDestinations().ToArray());

        // Another tenant with the same key, any byte changed, or the tag cut: refused, not opened.
        Assert.Equal((null, true), SealedRefreshTokens.Unprotect(token, [key], "globex"));
        for (var index = 1 + SealingKey.IdLength; index < raw.Length; index += 7)
        {
            var altered = (byte[])raw.Clone();
            altered[index] ^= 0x20;
            Assert.Equal((null, true), SealedRefreshTokens.Unprotect(Base64Url.EncodeToString(altered), [key], "acme"));
        }

        Assert.Equal((null, true), SealedRefreshTokens.Unprotect(Base64Url.EncodeToString(raw[..^1]), [key], "acme"));

        // Not this format, or a key the tenant no longer has: left to the other validations (a code, a JWT).
        Assert.Equal((null, false), SealedRefreshTokens.Unprotect(token, [NewKey()], "acme"));
        Assert.Equal((null, false), SealedRefreshTokens.Unprotect("eyJhbGciOiJkaXIifQ..a.b.c", [key], "acme"));
        Assert.Equal((null, false), SealedRefreshTokens.Unprotect(Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32)), [key], "acme"));
        Assert.Equal((null, false), SealedRefreshTokens.Unprotect("not base64url at all!", [key], "acme"));
    }

    private static SealingKey NewKey() => new(RandomNumberGenerator.GetBytes(SealingKey.IdLength), RandomNumberGenerator.GetBytes(32));
}
