using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Oidc;

/// <summary>A tenant's keys at one moment: those that sign now, and every key still published or still able to decrypt.</summary>
public sealed class TenantKeySet
{
    public required SigningCredentials Rsa { get; init; }

    public required SigningCredentials Ecdsa { get; init; }

    public required EncryptingCredentials Encryption { get; init; }

    /// <summary>Every signing key to publish and to validate with (active, pending and retiring ones).</summary>
    public required IReadOnlyList<SigningCredentials> Signing { get; init; }

    /// <summary>
    /// Signs the tokens only this service reads (codes and refresh tokens): HMAC-SHA256 with a key derived from the
    /// active encryption key, so it rotates and retires with it. Never published, never used for what others verify.
    /// </summary>
    public required SigningCredentials Internal { get; init; }

    /// <summary>Every internal signing key still able to verify a live code or refresh token (one per decryption key).</summary>
    public required IReadOnlyList<SigningCredentials> InternalValidation { get; init; }

    /// <summary>Every encryption key still able to decrypt a live code or refresh token.</summary>
    public required IReadOnlyList<EncryptingCredentials> Decryption { get; init; }

    /// <summary>Seals the refresh tokens issued now (<see cref="SealedRefreshTokens"/>): derived from the active encryption key.</summary>
    public required SealingKey RefreshSealing { get; init; }

    /// <summary>Every sealing key still able to open a live refresh token (one per decryption key).</summary>
    public required IReadOnlyList<SealingKey> RefreshUnsealing { get; init; }

    /// <summary>When this set must be rebuilt: a pending key activates or an old key retires.</summary>
    public required DateTimeOffset ValidUntil { get; init; }
}
