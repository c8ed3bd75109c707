using IdentityService.Data;

namespace IdentityService.Users;

/// <summary>
/// A password reset link sent by email: single-use, valid until <see cref="ExpiresAt"/>. Only the SHA-256 of the
/// link's token is stored, so the table gives no one a working link.
/// </summary>
public sealed class PasswordResetToken : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public Guid UserId { get; set; }

    public required byte[] TokenHash { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}
