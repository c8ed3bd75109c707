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

    /// <summary>Every encryption key still able to decrypt a live code or refresh token.</summary>
    public required IReadOnlyList<EncryptingCredentials> Decryption { get; init; }

    /// <summary>When this set must be rebuilt: a pending key activates or an old key retires.</summary>
    public required DateTimeOffset ValidUntil { get; init; }
}
