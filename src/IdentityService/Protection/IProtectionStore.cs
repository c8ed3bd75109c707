namespace IdentityService.Protection;

/// <summary>An IP address blocked at a tenant until a time, and why.</summary>
public sealed record IpBlock(string Ip, DateTimeOffset Until, string Reason);

/// <summary>
/// Shared counters and blocks of the sign-in protections. In memory on one instance; in Redis when
/// <c>Redis:Configuration</c> is set, so that every replica sees the same counts and blocks.
/// Windows and expiries follow the injected <see cref="TimeProvider"/>, not the store's own clock.
/// </summary>
public interface IProtectionStore
{
    /// <summary>Adds one to a tenant's counter of the current fixed window; returns the new count.</summary>
    Task<long> IncrementAsync(string tenantId, string key, TimeSpan window, CancellationToken cancellationToken = default);

    /// <summary>Adds a member to a tenant's set of the current fixed window; returns how many distinct members it holds.</summary>
    Task<long> AddDistinctAsync(string tenantId, string key, string member, TimeSpan window, CancellationToken cancellationToken = default);

    /// <summary>How many members other than <paramref name="member"/> the set of the current window holds (read only).</summary>
    Task<long> CountOthersAsync(string tenantId, string key, string member, TimeSpan window, CancellationToken cancellationToken = default);

    /// <summary>
    /// Marks a tenant's key used until <paramref name="until"/>: true the first time, false while an earlier use holds
    /// (a one-time value seen again, such as a client assertion's <c>jti</c>).
    /// </summary>
    Task<bool> UseOnceAsync(string tenantId, string key, DateTimeOffset until, CancellationToken cancellationToken = default);

    Task BlockAsync(string tenantId, string ip, DateTimeOffset until, string reason, CancellationToken cancellationToken = default);

    /// <summary>The active block of an address, or null.</summary>
    Task<IpBlock?> GetBlockAsync(string tenantId, string ip, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<IpBlock>> ListBlocksAsync(string tenantId, CancellationToken cancellationToken = default);

    /// <summary>Lifts a block; false when there was none.</summary>
    Task<bool> UnblockAsync(string tenantId, string ip, CancellationToken cancellationToken = default);

    /// <summary>
    /// Destroys everything kept for a tenant: counters, sets, blocks and (in Redis, where they share the tenant's
    /// key space) lockout counters. Part of erasing the tenant: addresses and account ids do not outlive it.
    /// </summary>
    Task ForgetTenantAsync(string tenantId, CancellationToken cancellationToken = default);
}

/// <summary>Whether a password may be checked now, for a lockout counter.</summary>
public enum AttemptSlot
{
    /// <summary>The attempt holds a slot: check the password, then complete the attempt.</summary>
    Granted,

    /// <summary>The counter is locked, or the attempts in flight could reach the threshold: do not check the password.</summary>
    Locked,
}

/// <summary>
/// Account lockout counters. Counting is atomic: an attempt takes a slot before its password is checked,
/// so parallel attempts lock an account at exactly the threshold and none past it reaches the password.
/// </summary>
public interface ILockoutStore
{
    Task<AttemptSlot> BeginAttemptAsync(string tenantId, string key, int maxFailures, CancellationToken cancellationToken = default);

    Task CompleteAttemptAsync(string tenantId, string key, bool succeeded, int maxFailures, TimeSpan lockout, CancellationToken cancellationToken = default);

    /// <summary>When the counter is locked until, or null.</summary>
    Task<DateTimeOffset?> LockedUntilAsync(string tenantId, string key, CancellationToken cancellationToken = default);

    /// <summary>Ends every lockout of an account (all counters whose key starts with the prefix).</summary>
    Task UnlockAsync(string tenantId, string keyPrefix, CancellationToken cancellationToken = default);
}
