using IdentityService.Data;

namespace IdentityService.Mfa;

/// <summary>
/// A sign-in waiting for its second factor, once the password was right: valid until <see cref="ExpiresAt"/>, spent
/// by its first success. The browser holds a random token in a cookie; only its SHA-256 is stored. A code sent by
/// email or SMS is stored as an HMAC keyed with that token, so the table alone gives no code and no challenge.
/// </summary>
public sealed class MfaChallenge : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public Guid UserId { get; set; }

    public required byte[] TokenHash { get; set; }

    /// <summary>Why the pipeline asked for a second factor (<c>mfa_required</c>, <c>mfa_enrolled</c>, <c>risk</c>, a captcha reason).</summary>
    public string Reason { get; set; } = "";

    /// <summary>The client the person is signing in to, for the log.</summary>
    public string? ClientId { get; set; }

    /// <summary>The country of the address the password came from, remembered for the account on success.</summary>
    public string? Country { get; set; }

    /// <summary>When the password was verified: the session's <c>auth_time</c>.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>An authenticator secret offered for enrollment (Data Protection), when the account has no factor yet.</summary>
    public string? PendingTotpSecret { get; set; }

    /// <summary>The factor the last code was sent by (<c>email</c> or <c>sms</c>).</summary>
    public string? CodeFactor { get; set; }

    public byte[]? CodeHash { get; set; }

    public int CodesSent { get; set; }

    public int FailedCodes { get; set; }
}

/// <summary>A user's authenticator app (RFC 6238 TOTP): its secret kept with Data Protection, and the last time step used.</summary>
public sealed class UserAuthenticator : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public Guid UserId { get; set; }

    public required string ProtectedSecret { get; set; }

    /// <summary>The time step of the last code accepted: a code is never accepted twice (RFC 6238 section 5.2).</summary>
    public long LastTimeStep { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>
/// One of an account's recovery codes: a second factor for when the usual one is lost, each good once. Only a
/// SHA-256 of the code (80 random bits) and the account is stored.
/// </summary>
public sealed class RecoveryCode : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public Guid UserId { get; set; }

    public required byte[] CodeHash { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the code signed someone in; a used code is kept until new codes replace the set.</summary>
    public DateTimeOffset? UsedAt { get; set; }
}

/// <summary>
/// A browser the person chose not to be asked the second step on again, for the tenant's <c>mfa.rememberBrowserDays</c>.
/// The browser holds a random token in a cookie; only its SHA-256 is stored, with the account's security stamp of
/// the day, so a new password ends the trust.
/// </summary>
public sealed class TrustedBrowser : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public Guid UserId { get; set; }

    public required byte[] TokenHash { get; set; }

    public string Stamp { get; set; } = "";

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}
