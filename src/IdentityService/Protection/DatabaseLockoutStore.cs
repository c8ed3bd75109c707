using IdentityService.Data;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Protection;

/// <summary>
/// Lockout counters in the database, shared by every replica without Redis. Each step is one conditional
/// UPDATE, which the database runs atomically: a slot is taken only while failures plus attempts in flight
/// stay under the threshold, so parallel attempts cannot overshoot it.
/// </summary>
internal sealed class DatabaseLockoutStore(IServiceScopeFactory scopes, TenantDirectory tenants, TimeProvider time) : ILockoutStore
{
    private static readonly TimeSpan StaleInFlight = TimeSpan.FromMinutes(1);

    public async Task<AttemptSlot> BeginAttemptAsync(string tenantId, string key, int maxFailures, CancellationToken cancellationToken = default)
    {
        using var scope = await ScopeAsync(tenantId, cancellationToken);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var rows = db.Set<AccountLockout>().Where(l => l.Key == key);
        var now = time.GetUtcNow();
        if (await TakeSlotAsync(rows, maxFailures, now, cancellationToken))
        {
            return AttemptSlot.Granted;
        }

        if (await rows.AnyAsync(cancellationToken))
        {
            return AttemptSlot.Locked;
        }

        db.Add(new AccountLockout { Key = key });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // Another attempt created the row first.
        }

        return await TakeSlotAsync(rows, maxFailures, now, cancellationToken) ? AttemptSlot.Granted : AttemptSlot.Locked;
    }

    /// <summary>
    /// One statement: an expired lockout counts as a fresh start, slots held by attempts that never completed
    /// (older than a minute) are given back, and a slot is taken if failures plus attempts in flight stay under
    /// the threshold. A refused slot changes nothing.
    /// </summary>
    private static async Task<bool> TakeSlotAsync(IQueryable<AccountLockout> rows, int maxFailures, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var stale = now - StaleInFlight;
        var granted = await rows
            .Where(l => l.LockedUntil == null || l.LockedUntil <= now)
            .Where(l => (l.LockedUntil != null ? 0 : l.Failures) + (l.InFlight > 0 && l.InFlightSince < stale ? 0 : l.InFlight) < maxFailures)
            .ExecuteUpdateAsync(s => s
                .SetProperty(l => l.Failures, l => l.LockedUntil != null ? 0 : l.Failures)
                .SetProperty(l => l.LockedUntil, (DateTimeOffset?)null)
                .SetProperty(l => l.InFlight, l => (l.InFlight > 0 && l.InFlightSince < stale ? 0 : l.InFlight) + 1)
                .SetProperty(l => l.InFlightSince, l => l.InFlight > 0 && l.InFlightSince < stale ? now : l.InFlightSince ?? now), cancellationToken);
        return granted == 1;
    }

    public async Task CompleteAttemptAsync(string tenantId, string key, bool succeeded, int maxFailures, TimeSpan lockout, CancellationToken cancellationToken = default)
    {
        using var scope = await ScopeAsync(tenantId, cancellationToken);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var rows = db.Set<AccountLockout>().Where(l => l.Key == key);
        var now = time.GetUtcNow();
        if (succeeded)
        {
            await rows.ExecuteUpdateAsync(s => s
                .SetProperty(l => l.Failures, 0)
                .SetProperty(l => l.InFlight, l => l.InFlight > 0 ? l.InFlight - 1 : 0)
                .SetProperty(l => l.InFlightSince, l => l.InFlight > 1 ? l.InFlightSince : null), cancellationToken);
            return;
        }

        var until = now + lockout;
        await rows.ExecuteUpdateAsync(s => s
            .SetProperty(l => l.Failures, l => l.Failures + 1)
            .SetProperty(l => l.InFlight, l => l.InFlight > 0 ? l.InFlight - 1 : 0)
            .SetProperty(l => l.InFlightSince, l => l.InFlight > 1 ? l.InFlightSince : null)
            .SetProperty(l => l.LockedUntil, l => l.Failures + 1 >= maxFailures ? until : l.LockedUntil), cancellationToken);
    }

    public async Task<DateTimeOffset?> LockedUntilAsync(string tenantId, string key, CancellationToken cancellationToken = default)
    {
        using var scope = await ScopeAsync(tenantId, cancellationToken);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var until = await db.Set<AccountLockout>().Where(l => l.Key == key).Select(l => l.LockedUntil).FirstOrDefaultAsync(cancellationToken);
        return until > time.GetUtcNow() ? until : null;
    }

    public async Task UnlockAsync(string tenantId, string keyPrefix, CancellationToken cancellationToken = default)
    {
        using var scope = await ScopeAsync(tenantId, cancellationToken);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        await db.Set<AccountLockout>().Where(l => l.Key == keyPrefix || l.Key.StartsWith(keyPrefix + ":"))
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Failures, 0).SetProperty(l => l.LockedUntil, (DateTimeOffset?)null), cancellationToken);
    }

    private async Task<IServiceScope> ScopeAsync(string tenantId, CancellationToken cancellationToken)
    {
        var tenant = await tenants.FindAsync(tenantId, cancellationToken) ?? throw new InvalidOperationException($"Tenant {tenantId} does not exist.");
        return scopes.CreateTenantScope(tenant);
    }
}
