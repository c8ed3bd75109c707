using IdentityService.Data;

namespace IdentityService.Audit;

/// <summary>
/// One entry of a tenant's append-only audit log: a sign-in attempt or an admin action. Nothing updates or
/// deletes a row, except the erasure of the whole tenant. <see cref="Id"/> grows with every entry, so the
/// log reads newest first by it.
/// </summary>
public sealed class AuditEvent : ITenantOwned
{
    public long Id { get; set; }

    public string TenantId { get; set; } = "";

    public DateTimeOffset Time { get; set; }

    /// <summary>What happened: one of <see cref="AuditEventTypes"/>.</summary>
    public required string Type { get; set; }

    /// <summary><c>succeeded</c>, <c>failed</c> or <c>challenged</c>.</summary>
    public required string Outcome { get; set; }

    /// <summary>The address the request came from.</summary>
    public string? Ip { get; set; }

    /// <summary>The account signing in, or the one an admin action was about.</summary>
    public Guid? UserId { get; set; }

    /// <summary>The client a person signed in to, or the one an admin action was about.</summary>
    public string? ClientId { get; set; }

    /// <summary>Who did an admin action: <c>client:{clientId}@{tenant}</c> or <c>user:{userId}@{tenant}</c>.</summary>
    public string? Actor { get; set; }

    /// <summary>A sign-in's reason code of a denial or challenge (<c>invalid_credentials</c>, <c>ip_blocked</c>...).</summary>
    public string? Reason { get; set; }

    /// <summary>The sign-in step that decided.</summary>
    public string? DecidedBy { get; set; }

    /// <summary>The identifier a person typed to sign in.</summary>
    public string? Identifier { get; set; }

    public string? Country { get; set; }

    public string? UserAgent { get; set; }

    /// <summary>Each sign-in step that ran, with its decision and reason, as JSON.</summary>
    public string? Trace { get; set; }

    /// <summary>What an admin action changed, as a JSON object (never a secret).</summary>
    public string? Details { get; set; }
}

/// <summary>The audit log's event types; webhooks subscribe to these names.</summary>
public static class AuditEventTypes
{
    public const string SignInSucceeded = "signin.succeeded";
    public const string SignInFailed = "signin.failed";
    public const string SignInChallenged = "signin.challenged";
    public const string UserCreated = "user.created";
    public const string UserUpdated = "user.updated";
    public const string UserDeleted = "user.deleted";
    public const string UserUnlocked = "user.unlocked";
    public const string MfaEnrolled = "mfa.enrolled";
    public const string MfaRemoved = "mfa.removed";
    public const string MfaCodeSent = "mfa.code_sent";
    public const string MfaRecoveryCodesCreated = "mfa.recovery_codes_created";
    public const string PasswordResetRequested = "password_reset.requested";
    public const string PasswordResetCompleted = "password_reset.completed";
    public const string SignUpRequested = "signup.requested";
    public const string PasswordChanged = "password.changed";
    public const string UserEmailVerified = "user.email_verified";
    public const string UserSessionsEnded = "user.sessions_ended";

    /// <summary>A person signed out of a browser session (the sign-out page, a client's RP-initiated logout); its details name the clients told.</summary>
    public const string UserSignedOut = "user.signed_out";
    public const string UserAppRevoked = "user.app_revoked";
    public const string UserEmailChangeRequested = "user.email_change_requested";
    public const string UserTermsAccepted = "user.terms_accepted";

    /// <summary>A person's own deletion refused (a wrong password): not <see cref="UserDeleted"/>, which webhooks take as done.</summary>
    public const string UserDeletionRefused = "user.deletion_refused";

    /// <summary>A person allowed (or denied) a device's sign-in with the code it showed (the device authorization grant).</summary>
    public const string UserDeviceAuthorized = "user.device_authorized";
    public const string UserDeviceDenied = "user.device_denied";
    public const string ClientCreated = "client.created";
    public const string ClientUpdated = "client.updated";
    public const string ClientDeleted = "client.deleted";
    public const string ClientSecretRotated = "client.secret_rotated";
    public const string PolicyChanged = "policy.changed";
    public const string TenantCreated = "tenant.created";
    public const string TenantUpdated = "tenant.updated";
    public const string TenantDeleted = "tenant.deleted";
    public const string IpBlockLifted = "ip_block.lifted";
    public const string WebhookCreated = "webhook.created";
    public const string WebhookDeleted = "webhook.deleted";
    public const string WebhookRedelivered = "webhook.redelivered";
    public const string TenantExported = "tenant.exported";
    public const string AuditExported = "audit.exported";
    public const string ErrorsAlert = "alert.errors";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal)
    {
        SignInSucceeded, SignInFailed, SignInChallenged, UserCreated, UserUpdated, UserDeleted, UserUnlocked,
        MfaEnrolled, MfaRemoved, MfaCodeSent, MfaRecoveryCodesCreated,
        PasswordResetRequested, PasswordResetCompleted, SignUpRequested, PasswordChanged, UserEmailVerified, UserSessionsEnded, UserSignedOut, UserAppRevoked, UserEmailChangeRequested, UserTermsAccepted,
        UserDeletionRefused, UserDeviceAuthorized, UserDeviceDenied,
        ClientCreated, ClientUpdated, ClientDeleted, ClientSecretRotated, PolicyChanged, TenantCreated,
        TenantUpdated, TenantDeleted, IpBlockLifted, WebhookCreated, WebhookDeleted, WebhookRedelivered, TenantExported,
        AuditExported, ErrorsAlert,
    };
}
