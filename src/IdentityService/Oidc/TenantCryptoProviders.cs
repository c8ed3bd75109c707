using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Oidc;

/// <summary>
/// The crypto provider factory of every tenant key. IdentityModel's own signature provider for an EC key carries an
/// object pool of adapters, five delegates and two dictionaries of minimum key sizes (about 1.9 KB per key, 19 MB
/// with 10,000 tenants), and lives in the LRU cache that every signature looks up; a tenant's ES256 key
/// (<see cref="TenantEcdsaKey"/>) instead owns one small provider that signs and verifies with its ECDsa directly.
/// The other keys (RS256, the internal HMAC keys, AES key wrap) keep IdentityModel's providers and cache.
/// </summary>
internal sealed class TenantCryptoProviders(CryptoProviderCache cache) : CryptoProviderFactory(cache)
{
    public override SignatureProvider CreateForSigning(SecurityKey key, string algorithm) =>
        Own(key, algorithm) ?? base.CreateForSigning(key, algorithm);

    public override SignatureProvider CreateForSigning(SecurityKey key, string algorithm, bool cacheProvider) =>
        Own(key, algorithm) ?? base.CreateForSigning(key, algorithm, cacheProvider);

    public override SignatureProvider CreateForVerifying(SecurityKey key, string algorithm) =>
        Own(key, algorithm) ?? base.CreateForVerifying(key, algorithm);

    public override SignatureProvider CreateForVerifying(SecurityKey key, string algorithm, bool cacheProvider) =>
        Own(key, algorithm) ?? base.CreateForVerifying(key, algorithm, cacheProvider);

    public override void ReleaseSignatureProvider(SignatureProvider signatureProvider)
    {
        // A key's own provider lives as long as the key.
        if (signatureProvider is not Es256SignatureProvider)
        {
            base.ReleaseSignatureProvider(signatureProvider);
        }
    }

    private static Es256SignatureProvider? Own(SecurityKey key, string algorithm) =>
        key is TenantEcdsaKey ec && string.Equals(algorithm, SecurityAlgorithms.EcdsaSha256, StringComparison.Ordinal) ? ec.Provider : null;
}

/// <summary>A tenant's P-256 key, with the one ES256 signature provider made for it on first use.</summary>
internal sealed class TenantEcdsaKey : ECDsaSecurityKey
{
    private Es256SignatureProvider? _provider;

    public TenantEcdsaKey(ECDsa ecdsa) : base(ecdsa)
    {
        if (ecdsa.KeySize != 256)
        {
            throw new ArgumentException("A tenant's ES256 key is a P-256 key.", nameof(ecdsa));
        }
    }

    public Es256SignatureProvider Provider
    {
        get
        {
            if (_provider is { } provider)
            {
                return provider;
            }

            var made = new Es256SignatureProvider(this);
            return Interlocked.CompareExchange(ref _provider, made, null) ?? made;
        }
    }
}

/// <summary>
/// ES256 (ECDSA P-256 with SHA-256, the signature as r and s of 32 bytes each, RFC 7518 section 3.4) with a tenant
/// key's ECDsa. .NET's ECDsa may sign and verify from several threads at once.
/// </summary>
internal sealed class Es256SignatureProvider : SignatureProvider
{
    private const DSASignatureFormat Format = DSASignatureFormat.IeeeP1363FixedFieldConcatenation;
    private readonly ECDsa _ecdsa;

    public Es256SignatureProvider(TenantEcdsaKey key) : base(key, SecurityAlgorithms.EcdsaSha256)
    {
        _ecdsa = key.ECDsa;
        WillCreateSignatures = key.PrivateKeyStatus != PrivateKeyStatus.DoesNotExist;
    }

    public override byte[] Sign(byte[] input) => _ecdsa.SignData(input, HashAlgorithmName.SHA256, Format);

    public override byte[] Sign(byte[] input, int offset, int count) => _ecdsa.SignData(input, offset, count, HashAlgorithmName.SHA256, Format);

    public override bool Sign(ReadOnlySpan<byte> data, Span<byte> destination, out int bytesWritten) =>
        _ecdsa.TrySignData(data, destination, HashAlgorithmName.SHA256, Format, out bytesWritten);

    public override bool Verify(byte[] input, byte[] signature) => _ecdsa.VerifyData(input, signature, HashAlgorithmName.SHA256, Format);

    public override bool Verify(byte[] input, int inputOffset, int inputLength, byte[] signature, int signatureOffset, int signatureLength) =>
        _ecdsa.VerifyData(input.AsSpan(inputOffset, inputLength), signature.AsSpan(signatureOffset, signatureLength), HashAlgorithmName.SHA256, Format);

    // The ECDsa is the key's.
    protected override void Dispose(bool disposing)
    {
    }
}
