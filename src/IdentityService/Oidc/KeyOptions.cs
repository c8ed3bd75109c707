using System.ComponentModel.DataAnnotations;

namespace IdentityService.Oidc;

/// <summary>The <c>Keys</c> section: rotation of each tenant's signing and encryption keys.</summary>
public sealed class KeyOptions
{
    public const string Section = "Keys";

    /// <summary>How long a key signs before a successor replaces it. Default: 90 days.</summary>
    [Range(1, 3650)]
    public int RotationDays { get; set; } = 90;

    /// <summary>How long a new key is published in the JWKS before it signs. Default: 48 hours.</summary>
    [Range(0, 720)]
    public int PublishLeadHours { get; set; } = 48;

    /// <summary>How many tenants' OpenID Connect state (options, keys, documents) stay in memory, a few KiB each. Default: 20,000.</summary>
    [Range(1, 1_000_000)]
    public int TenantCacheSize { get; set; } = 20_000;
}
