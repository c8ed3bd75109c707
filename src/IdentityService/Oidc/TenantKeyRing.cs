using System.Security.Cryptography;
using IdentityService.Data;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Oidc;

/// <summary>
/// Loads a tenant's keys from the database, generating them on first use and rotating them:
/// a successor is published <see cref="KeyOptions.PublishLeadHours"/> before it signs, and a
/// replaced key stays published (or able to decrypt) until every token it protected has expired.
/// Private material is stored protected by Data Protection, whose key ring is shared by all replicas.
/// </summary>
public sealed class TenantKeyRing(IServiceScopeFactory scopes, IDataProtectionProvider dataProtection, TimeProvider time, IOptions<KeyOptions> options)
{
    internal const string Rs256 = SecurityAlgorithms.RsaSha256;
    internal const string Es256 = SecurityAlgorithms.EcdsaSha256;
    internal const string A256Kw = SecurityAlgorithms.Aes256KW;
    internal const string Hs256 = SecurityAlgorithms.HmacSha256;

    /// <summary>The HKDF label of the internal signing key derived from an encryption key (a separate key for a separate use).</summary>
    private static readonly byte[] InternalSigningLabel = "IdentityService internal token signing v1"u8.ToArray();

    /// <summary>The HKDF label of the key that seals refresh tokens, derived from an encryption key.</summary>
    private static readonly byte[] RefreshSealingLabel = "IdentityService refresh token sealing v1"u8.ToArray();

    /// <summary>How far replicas' clocks may disagree.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    private readonly IDataProtector _protector = dataProtection.CreateProtector("IdentityService.TenantKeys.v1");

    /// <summary>
    /// Where the tenants' keys find their signature providers. IdentityModel caches a provider per key, algorithm and
    /// use, in a cache of 1,000 by default: with more tenants in use than that, nearly every token made a new provider
    /// (a key handle, a hash context and two dictionaries) and left the old one for its background disposal, which
    /// fell behind (84,000 of them alive after 100,000 tokens over 10,000 tenants). This cache holds three
    /// per tenant kept in memory (<see cref="KeyOptions.TenantCacheSize"/>), for signing and for verifying each;
    /// the ES256 keys, which sign most tokens, own their provider and do not use it (<see cref="TenantCryptoProviders"/>).
    /// </summary>
    private readonly TenantCryptoProviders _cryptoProviders = new(new InMemoryCryptoProviderCache(
        new CryptoProviderCacheOptions { SizeLimit = Math.Max(1_000, options.Value.TenantCacheSize * 3) }));

    public async Task<TenantKeySet> LoadAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        using var scope = scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();

        var now = time.GetUtcNow();
        var keys = await db.TenantKeys.AsNoTracking().ToListAsync(cancellationToken);
        var added = new List<TenantKey>();
        foreach (var algorithm in new[] { Rs256, Es256, A256Kw })
        {
            var ofAlgorithm = keys.Where(k => k.Algorithm == algorithm).ToList();
            var active = ofAlgorithm.Where(k => k.ActivatesAt <= now).MaxBy(k => k.ActivatesAt);
            var pending = ofAlgorithm.Any(k => k.ActivatesAt > now);
            if (active is null && !pending)
            {
                // A tenant's first key signs at once: no relying party can know the tenant yet. It is dated a
                // little back, so that a replica whose clock runs behind this one's also sees it active.
                added.Add(NewKey(algorithm, now, now - ClockSkew));
            }
            else if (active is not null && !pending && active.ActivatesAt.AddDays(options.Value.RotationDays) <= now)
            {
                added.Add(NewKey(algorithm, now, now.AddHours(options.Value.PublishLeadHours)));
            }
        }

        if (added.Count > 0)
        {
            db.TenantKeys.AddRange(added);
            await db.SaveChangesAsync(cancellationToken);
            keys.AddRange(added);
        }

        return Build(tenant, keys, now);
    }

    private TenantKeySet Build(Tenant tenant, List<TenantKey> keys, DateTimeOffset now)
    {
        // A key signs until its successor activates; the tokens it signed live at most this long after.
        var retention = TimeSpan.FromSeconds(new[]
        {
            tenant.AccessTokenLifetimeSeconds, tenant.IdentityTokenLifetimeSeconds,
            tenant.RefreshTokenLifetimeSeconds, tenant.AuthorizationCodeLifetimeSeconds,
        }.Max()) + TimeSpan.FromMinutes(5);

        var validUntil = now.AddHours(1);
        var retained = new List<(TenantKey Key, bool Active)>();
        // In a fixed order, whatever order the database returned the rows in: every replica publishes the same JWKS.
        var inOrder = keys.OrderBy(k => k.Algorithm, StringComparer.Ordinal).ThenBy(k => k.ActivatesAt).ThenBy(k => k.Id);
        foreach (var group in inOrder.GroupBy(k => k.Algorithm))
        {
            var ordered = group.ToList();
            var activeIndex = ordered.FindLastIndex(k => k.ActivatesAt <= now);
            if (activeIndex < 0)
            {
                // Only keys dated in the future (another replica's clock is ahead): the earliest one signs.
                activeIndex = 0;
            }

            for (var i = 0; i < ordered.Count; i++)
            {
                var key = ordered[i];
                if (i > activeIndex)
                {
                    retained.Add((key, false));
                    validUntil = Min(validUntil, key.ActivatesAt);
                    continue;
                }

                if (i == activeIndex)
                {
                    retained.Add((key, true));
                    continue;
                }

                // Replaced: its successor activated at ordered[i + 1].ActivatesAt.
                var retiresAt = ordered[i + 1].ActivatesAt + retention;
                if (retiresAt > now)
                {
                    retained.Add((key, false));
                    validUntil = Min(validUntil, retiresAt);
                }
            }
        }

        SigningCredentials? rsa = null, ecdsa = null;
        EncryptingCredentials? encryption = null;
        SigningCredentials? internalSigning = null;
        SealingKey? sealing = null;
        var unsealing = new List<SealingKey>();
        var signing = new List<SigningCredentials>();
        var decryption = new List<EncryptingCredentials>();
        var internalValidation = new List<SigningCredentials>();
        foreach (var (key, active) in retained)
        {
            var material = _protector.Unprotect(Convert.FromBase64String(key.ProtectedMaterial));
            var keyId = key.Id.ToString("N");
            switch (key.Algorithm)
            {
                case Rs256:
                    // Kept as parameters: the JWKS needs only the modulus, and IdentityModel makes the RSA object
                    // (an import that costs about a millisecond of CPU, and native memory) when the key first signs.
                    var rsaCredentials = new SigningCredentials(new RsaSecurityKey(RsaPrivateKey.FromPkcs8(material)) { KeyId = keyId, CryptoProviderFactory = _cryptoProviders }, Rs256);
                    signing.Add(rsaCredentials);
                    if (active)
                    {
                        rsa = rsaCredentials;
                    }

                    break;
                case Es256:
                    var ecKey = CompactEcdsa.FromPkcs8(material);
                    var ecCredentials = new SigningCredentials(new TenantEcdsaKey(ecKey) { KeyId = keyId, CryptoProviderFactory = _cryptoProviders }, Es256);
                    signing.Add(ecCredentials);
                    if (active)
                    {
                        ecdsa = ecCredentials;
                    }

                    break;
                case A256Kw:
                    var encryptionCredentials = new EncryptingCredentials(
                        new SymmetricSecurityKey(material) { KeyId = keyId, CryptoProviderFactory = _cryptoProviders }, A256Kw, SecurityAlgorithms.Aes256CbcHmacSha512);
                    decryption.Add(encryptionCredentials);
                    var derived = new SigningCredentials(new SymmetricSecurityKey(
                        HKDF.DeriveKey(HashAlgorithmName.SHA256, material, 32, salt: null, info: InternalSigningLabel)) { KeyId = keyId + "-hs", CryptoProviderFactory = _cryptoProviders }, Hs256);
                    internalValidation.Add(derived);
                    var sealingKey = new SealingKey(key.Id.ToByteArray()[..SealingKey.IdLength],
                        HKDF.DeriveKey(HashAlgorithmName.SHA256, material, 32, salt: null, info: RefreshSealingLabel));
                    unsealing.Add(sealingKey);
                    if (active)
                    {
                        encryption = encryptionCredentials;
                        internalSigning = derived;
                        sealing = sealingKey;
                    }

                    break;
            }
        }

        return new TenantKeySet
        {
            Rsa = rsa ?? throw new InvalidOperationException($"Tenant {tenant.Id} has no active RS256 key."),
            Ecdsa = ecdsa ?? throw new InvalidOperationException($"Tenant {tenant.Id} has no active ES256 key."),
            Encryption = encryption ?? throw new InvalidOperationException($"Tenant {tenant.Id} has no active encryption key."),
            Internal = internalSigning ?? throw new InvalidOperationException($"Tenant {tenant.Id} has no active encryption key."),
            RefreshSealing = sealing ?? throw new InvalidOperationException($"Tenant {tenant.Id} has no active encryption key."),
            RefreshUnsealing = unsealing,
            Signing = signing,
            InternalValidation = internalValidation,
            Decryption = decryption,
            ValidUntil = validUntil,
        };
    }

    private TenantKey NewKey(string algorithm, DateTimeOffset now, DateTimeOffset activatesAt)
    {
        byte[] material;
        switch (algorithm)
        {
            case Rs256:
                using (var rsa = RSA.Create(2048))
                {
                    material = rsa.ExportPkcs8PrivateKey();
                }

                break;
            case Es256:
                using (var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256))
                {
                    material = ecdsa.ExportPkcs8PrivateKey();
                }

                break;
            default:
                material = RandomNumberGenerator.GetBytes(32);
                break;
        }

        return new TenantKey
        {
            Id = Guid.NewGuid(),
            Algorithm = algorithm,
            ProtectedMaterial = Convert.ToBase64String(_protector.Protect(material)),
            CreatedAt = now,
            ActivatesAt = activatesAt,
        };
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
