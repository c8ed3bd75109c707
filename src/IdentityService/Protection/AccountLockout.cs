using IdentityService.Data;

namespace IdentityService.Protection;

/// <summary>One lockout counter of an account (in smart mode, one per kind of device) in the database.</summary>
public sealed class AccountLockout : ITenantOwned
{
    public string TenantId { get; set; } = "";

    /// <summary><c>{userId}</c> in plain mode, <c>{userId}:familiar</c> or <c>{userId}:unfamiliar</c> in smart mode.</summary>
    public required string Key { get; set; }

    public int Failures { get; set; }

    /// <summary>Attempts that took a slot and whose password is being checked.</summary>
    public int InFlight { get; set; }

    /// <summary>When the oldest attempt in flight began: a slot held longer than a minute is given back.</summary>
    public DateTimeOffset? InFlightSince { get; set; }

    public DateTimeOffset? LockedUntil { get; set; }
}
