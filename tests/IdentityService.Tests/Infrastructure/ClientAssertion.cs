using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Tests.Infrastructure;

/// <summary>What a client with keys (<c>private_key_jwt</c>) sends: its public key to register, and assertions it signs.</summary>
public static class ClientAssertion
{
    public const string Type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

    /// <summary>
    /// An assertion as a client library makes one: iss and sub the client id, the audience given, a jti (none when
    /// <paramref name="jti"/> is empty), issued now and expiring <paramref name="lifetime"/> later (before now when negative).
    /// </summary>
    public static string Create(
        SigningCredentials credentials, string clientId, string audience, DateTime now, TimeSpan lifetime, string? jti = null, string? type = "client-authentication+jwt")
    {
        var claims = new Dictionary<string, object> { ["sub"] = clientId };
        if (jti != "")
        {
            claims["jti"] = jti ?? Guid.NewGuid().ToString();
        }

        var expires = now + lifetime;
        var issued = expires < now ? expires.AddMinutes(-1) : now;
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = clientId,
            Audience = audience,
            IssuedAt = issued,
            NotBefore = issued,
            Expires = expires,
            Claims = claims,
            SigningCredentials = credentials,
            TokenType = type,
        });
    }

    public static SigningCredentials Es256(ECDsa key, string kid) => new(new ECDsaSecurityKey(key) { KeyId = kid }, SecurityAlgorithms.EcdsaSha256);

    /// <summary>The public JWK of a P-256 key, as a client registers it.</summary>
    public static object PublicJwk(ECDsa key, string kid)
    {
        var p = key.ExportParameters(false);
        return new { kty = "EC", crv = "P-256", kid, use = "sig", alg = "ES256", x = Base64UrlEncoder.Encode(p.Q.X), y = Base64UrlEncoder.Encode(p.Q.Y) };
    }
}
