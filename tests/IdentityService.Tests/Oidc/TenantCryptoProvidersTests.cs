using System.Security.Claims;
using System.Security.Cryptography;
using IdentityService.Oidc;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// A tenant's ES256 key signs and verifies with its own provider (<see cref="TenantCryptoProviders"/>): its tokens
/// must be ordinary ES256 JWTs for anyone holding the public key, and it must verify ES256 JWTs made by others.
/// </summary>
public sealed class TenantCryptoProvidersTests
{
    private static readonly TenantCryptoProviders Providers = new(new InMemoryCryptoProviderCache());
    private readonly ECDsa _ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    [Fact]
    public async Task ATokenSignedWithATenantKey_IsValidForIdentityModelsOwnProvider_AndATamperedOneIsNot()
    {
        var token = Create(new TenantEcdsaKey(_ecdsa) { KeyId = "k1", CryptoProviderFactory = Providers });
        var publicOnly = new ECDsaSecurityKey(ECDsa.Create(_ecdsa.ExportParameters(false))) { KeyId = "k1" };

        Assert.True((await ValidateAsync(token, publicOnly)).IsValid);
        Assert.False((await ValidateAsync(Tamper(token), publicOnly)).IsValid);
    }

    [Fact]
    public async Task ATenantKey_VerifiesATokenSignedByIdentityModelsOwnProvider_AndRefusesATamperedOne()
    {
        var token = Create(new ECDsaSecurityKey(_ecdsa) { KeyId = "k1" });
        var tenantKey = new TenantEcdsaKey(ECDsa.Create(_ecdsa.ExportParameters(false))) { KeyId = "k1", CryptoProviderFactory = Providers };

        Assert.True((await ValidateAsync(token, tenantKey)).IsValid);
        Assert.False((await ValidateAsync(Tamper(token), tenantKey)).IsValid);
        var other = new TenantEcdsaKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "k1", CryptoProviderFactory = Providers };
        Assert.False((await ValidateAsync(token, other)).IsValid);
    }

    [Fact]
    public void AKeysProvider_IsMadeOnce_AndStillSignsAfterARelease()
    {
        var key = new TenantEcdsaKey(_ecdsa) { CryptoProviderFactory = Providers };
        var provider = Providers.CreateForSigning(key, SecurityAlgorithms.EcdsaSha256);
        Providers.ReleaseSignatureProvider(provider);

        Assert.Same(provider, Providers.CreateForVerifying(key, SecurityAlgorithms.EcdsaSha256));
        var signature = provider.Sign("payload"u8.ToArray());
        Assert.Equal(64, signature.Length);
        Assert.True(_ecdsa.VerifyData("payload"u8, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
    }

    [Fact]
    public void AKeyOtherThanP256_IsRefused() =>
        Assert.Throws<ArgumentException>(() => new TenantEcdsaKey(ECDsa.Create(ECCurve.NamedCurves.nistP384)));

    [Fact]
    public async Task ATenantKeyReadFromPkcs8_IsOneOpenSslKey_SignsOrdinaryES256Tokens_AndPublishesItsPublicPointWithoutExportingThePrivateOne()
    {
        var compact = (CompactEcdsa)CompactEcdsa.FromPkcs8(_ecdsa.ExportPkcs8PrivateKey());
        var tenantKey = new TenantEcdsaKey(compact) { KeyId = "k1", CryptoProviderFactory = Providers };

        // On Linux OpenSSL decodes it into its provider form (one native copy of the key instead of two).
        Assert.Equal(OperatingSystem.IsLinux(), compact.IsProviderKey);
        var token = Create(tenantKey);
        var publicOnly = new ECDsaSecurityKey(ECDsa.Create(_ecdsa.ExportParameters(false))) { KeyId = "k1" };
        Assert.True((await ValidateAsync(token, publicOnly)).IsValid);
        Assert.False((await ValidateAsync(Tamper(token), publicOnly)).IsValid);
        Assert.True((await ValidateAsync(Create(new ECDsaSecurityKey(_ecdsa) { KeyId = "k1" }), tenantKey)).IsValid);

        // Its public parameters (what the JWKS publishes) are the key's point, read without the private part.
        var published = tenantKey.ECDsa.ExportParameters(includePrivateParameters: false);
        var expected = _ecdsa.ExportParameters(false);
        Assert.Equal(expected.Q.X, published.Q.X);
        Assert.Equal(expected.Q.Y, published.Q.Y);
        Assert.Null(published.D);
        Assert.Equal(expected.Curve.Oid.Value, published.Curve.Oid.Value);
        Assert.Equal(0, compact.PrivateExports);
    }

    [Fact]
    public void AKeyReadFromPkcs8_ThatIsNotP256_IsRefused()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        Assert.Throws<CryptographicException>(() => CompactEcdsa.FromPkcs8(p384.ExportPkcs8PrivateKey()));
        Assert.ThrowsAny<CryptographicException>(() => CompactEcdsa.FromPkcs8([0x30, 0x03, 0x02, 0x01, 0x00]));
    }

    private static string Create(SecurityKey key) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = "https://id.example.com/t/acme",
        Audience = "api",
        Subject = new ClaimsIdentity([new Claim("sub", "alice")]),
        SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256),
    });

    private static Task<TokenValidationResult> ValidateAsync(string token, SecurityKey key) =>
        new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = "https://id.example.com/t/acme",
            ValidAudience = "api",
            IssuerSigningKey = key,
        });

    /// <summary>The same header and signature over another payload.</summary>
    private static string Tamper(string token)
    {
        var parts = token.Split('.');
        var payload = Base64UrlEncoder.Decode(parts[1]).Replace("alice", "mallory", StringComparison.Ordinal);
        return $"{parts[0]}.{Base64UrlEncoder.Encode(payload)}.{parts[2]}";
    }
}
