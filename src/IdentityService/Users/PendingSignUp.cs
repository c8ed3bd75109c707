using IdentityService.Data;

namespace IdentityService.Users;

/// <summary>
/// A sign-up waiting for its email address to be confirmed. No account exists until the emailed link is used: an
/// address nobody confirmed never holds an account, and a stranger cannot take an address by signing up with it.
/// Only the SHA-256 of the link's token is stored; the password only as the configured hasher hashed it.
/// </summary>
public sealed class PendingSignUp : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public required string Email { get; set; }

    public required string NormalizedEmail { get; set; }

    public required string PasswordHash { get; set; }

    /// <summary>The full name given, where the tenant asks it.</summary>
    public string? Name { get; set; }

    public required byte[] TokenHash { get; set; }

    /// <summary>Where the person was going when they signed up (an authorization request), checked again when used.</summary>
    public string? ReturnUrl { get; set; }

    /// <summary>The terms of service the person accepted on the page (the tenant's <c>signUp.termsUrl</c> then).</summary>
    public string? TermsUrl { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}
