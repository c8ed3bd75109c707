using IdentityService.Data;

namespace IdentityService.Protection;

/// <summary>A device or a country an account signed in from successfully: what makes a later sign-in familiar.</summary>
public sealed class UserSighting : ITenantOwned
{
    public const string Device = "device";
    public const string Country = "country";

    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public Guid UserId { get; set; }

    /// <summary><see cref="Device"/> (a hash of the device cookie's id) or <see cref="Country"/>.</summary>
    public required string Kind { get; set; }

    public required string Value { get; set; }

    public DateTimeOffset FirstSeen { get; set; }

    public DateTimeOffset LastSeen { get; set; }
}
