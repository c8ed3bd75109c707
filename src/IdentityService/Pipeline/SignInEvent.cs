using IdentityService.Data;

namespace IdentityService.Pipeline;

/// <summary>
/// One sign-in attempt in the append-only sign-in log: what was tried, from where, what each step decided,
/// and the outcome. Nothing updates or deletes a row, except the erasure of the whole tenant.
/// </summary>
public sealed class SignInEvent : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public DateTimeOffset Time { get; set; }

    /// <summary><c>succeeded</c>, <c>failed</c> or <c>challenged</c>.</summary>
    public required string Outcome { get; set; }

    /// <summary>The reason code of a denial or challenge (<c>invalid_credentials</c>, <c>ip_blocked</c>...).</summary>
    public string? Reason { get; set; }

    /// <summary>The step that decided.</summary>
    public string? DecidedBy { get; set; }

    /// <summary>The identifier as typed.</summary>
    public required string Identifier { get; set; }

    public Guid? UserId { get; set; }

    public required string Ip { get; set; }

    public string? Country { get; set; }

    public string? UserAgent { get; set; }

    public string? ClientId { get; set; }

    /// <summary>Each step that ran, with its decision and reason, as JSON.</summary>
    public required string Trace { get; set; }
}
