namespace IdentityService.Tenancy;

/// <summary>A client company of the service. Every user, client, key and token belongs to exactly one.</summary>
public sealed class Tenant
{
    /// <summary>The reserved platform tenant whose clients may manage every tenant.</summary>
    public const string SystemId = "system";

    public required string Id { get; set; }

    public required string DisplayName { get; set; }

    /// <summary>A suspended tenant keeps its data but signs nobody in and issues no token.</summary>
    public bool Suspended { get; set; }

    /// <summary>Signing algorithm of access tokens: <c>ES256</c> (default) or <c>RS256</c>. ID tokens are always RS256.</summary>
    public string AccessTokenAlgorithm { get; set; } = "ES256";

    public int AccessTokenLifetimeSeconds { get; set; } = 3600;

    public int IdentityTokenLifetimeSeconds { get; set; } = 1200;

    public int RefreshTokenLifetimeSeconds { get; set; } = 14 * 24 * 3600;

    public int AuthorizationCodeLifetimeSeconds { get; set; } = 300;

    /// <summary>The longest a token of this tenant lives: a sign-in may be in use that long after its last refresh.</summary>
    [System.ComponentModel.DataAnnotations.Schema.NotMapped]
    public TimeSpan LongestTokenLifetime =>
        LongestOf(RefreshTokenLifetimeSeconds, AccessTokenLifetimeSeconds, IdentityTokenLifetimeSeconds, AuthorizationCodeLifetimeSeconds);

    /// <summary>The longest of a tenant's token lifetimes, in seconds: <see cref="LongestTokenLifetime"/> of lifetimes read alone.</summary>
    public static TimeSpan LongestOf(int refresh, int access, int identity, int code) =>
        TimeSpan.FromSeconds(Math.Max(Math.Max(refresh, access), Math.Max(identity, code)));

    /// <summary>Seconds during which a rotated refresh token may still be used (concurrent requests); 0 by default.</summary>
    public int RefreshTokenReuseLeewaySeconds { get; set; }

    /// <summary>Days an audit entry is kept before it is deleted; 0 keeps the log whole.</summary>
    public int AuditRetentionDays { get; set; }

    /// <summary>Lifetime of the sign-in (SSO) cookie.</summary>
    public int SessionLifetimeSeconds { get; set; } = 8 * 3600;

    /// <summary>A session unused this long ends (before its lifetime); 0 (default): only its lifetime ends it.</summary>
    public int SessionIdleTimeoutSeconds { get; set; }

    /// <summary>API resources (RFC 8707 resource indicators) a client of this tenant may ask tokens for.</summary>
    public List<string> ApiResources { get; set; } = [];

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Changes on every update; the per-tenant OpenID Connect state is rebuilt when it differs.</summary>
    public Guid Version { get; set; } = Guid.NewGuid();
}
