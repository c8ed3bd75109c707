using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Webhooks;

/// <summary>The deliveries' rows: each outcome kept, a retry taken by one replica, deliveries left behind taken over.</summary>
public sealed partial class WebhookDispatcher
{
    /// <summary>Deliveries taken over per look, the oldest first.</summary>
    private const int TakeOverBatch = 100;

    /// <summary>
    /// Sends a delivery that ended (delivered or failed) once more, now, for a tenant's admin; no retries follow a
    /// failure. False when it is pending (being tried) or was taken meanwhile.
    /// </summary>
    public async Task<bool> SendAgainAsync(Tenant tenant, WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        if (delivery.Status == WebhookDelivery.Pending || !await ClaimEndedAsync(tenant, delivery.Id, delivery.Attempts, cancellationToken))
        {
            return false;
        }

        if (await JobAsync(tenant, delivery, cancellationToken) is { } job)
        {
            _sends.Track(RunAsync(job, delivery.Id, delivery.Attempts, schedule: false, _stopping));
        }

        return true;
    }

    /// <summary>
    /// Keeps an attempt's outcome in the delivery's row, only from the count this replica holds. False when the
    /// delivery is gone (its webhook deleted) or was taken by another.
    /// </summary>
    private async Task<bool> RecordAsync(
        Job job, Guid rowId, int attempts, DateTimeOffset started, int? status, string? error, string state, DateTimeOffset? next, CancellationToken cancellationToken)
    {
        using var scope = _scopes.CreateTenantScope(job.Tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        DateTimeOffset? deliveredAt = state == WebhookDelivery.Delivered ? _time.GetUtcNow() : null;
        var updated = await db.InTurnAsync(c => db.Set<WebhookDelivery>().Where(d => d.Id == rowId && d.Attempts == attempts - 1).ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, state)
            .SetProperty(d => d.Attempts, attempts)
            .SetProperty(d => d.LastAttemptAt, started)
            .SetProperty(d => d.LastStatus, status)
            .SetProperty(d => d.LastError, error)
            .SetProperty(d => d.NextAttemptAt, next)
            .SetProperty(d => d.DeliveredAt, deliveredAt), c), cancellationToken);
        return updated == 1;
    }

    /// <summary>
    /// Takes a pending delivery for an attempt: it must still have the attempt count and the due time read, and is
    /// held for <see cref="Hold"/> (a later due time), so of two replicas reading the same row one takes it. False
    /// when another replica (or an admin) took it, or it is gone.
    /// </summary>
    private Task<bool> ClaimAsync(Tenant tenant, Guid rowId, int attempts, DateTimeOffset? due, CancellationToken cancellationToken) =>
        ClaimWhereAsync(tenant, d => d.Id == rowId && d.Attempts == attempts && d.Status == WebhookDelivery.Pending && d.NextAttemptAt == due, cancellationToken);

    /// <summary>Takes a delivery that ended (delivered or failed) to send it again: it becomes pending, so of two admins asking at once one takes it.</summary>
    private Task<bool> ClaimEndedAsync(Tenant tenant, Guid rowId, int attempts, CancellationToken cancellationToken) =>
        ClaimWhereAsync(tenant, d => d.Id == rowId && d.Attempts == attempts && d.Status != WebhookDelivery.Pending, cancellationToken);

    private async Task<bool> ClaimWhereAsync(Tenant tenant, System.Linq.Expressions.Expression<Func<WebhookDelivery, bool>> unchanged, CancellationToken cancellationToken)
    {
        using var scope = _scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        DateTimeOffset? holdUntil = _time.GetUtcNow() + Hold;
        return await db.InTurnAsync(c => db.Set<WebhookDelivery>().Where(unchanged)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Status, WebhookDelivery.Pending).SetProperty(d => d.NextAttemptAt, holdUntil), c), cancellationToken) == 1;
    }

    /// <summary>What a kept delivery needs to be sent again; null (the delivery ended) when its webhook or event is gone.</summary>
    private async Task<Job?> JobAsync(Tenant tenant, WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        var target = (await SubscribersAsync(tenant, cancellationToken)).FirstOrDefault(t => t.Id == delivery.WebhookId);
        using var scope = _scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var entry = target is null ? null : await db.Set<AuditEvent>().AsNoTracking().SingleOrDefaultAsync(e => e.Id == delivery.EventId, cancellationToken);
        if (entry is null)
        {
            var reason = target is null ? "The webhook was deleted." : "The event is no longer in the audit log.";
            await db.InTurnAsync(c => db.Set<WebhookDelivery>().Where(d => d.Id == delivery.Id).ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, WebhookDelivery.Failed).SetProperty(d => d.NextAttemptAt, (DateTimeOffset?)null).SetProperty(d => d.LastError, reason), c), cancellationToken);
            return null;
        }

        return new Job(tenant, target!, entry.Id, entry.Type, Body(entry));
    }

    /// <summary>Every <see cref="Hold"/>: takes over the deliveries whose retry is overdue by more than that.</summary>
    private async Task TakeOverLoopAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Hold, _time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await TakeOverAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                _logger.LogError(e, "Looking for webhook deliveries left behind failed; it is tried again in {Minutes} minute(s).", Hold.TotalMinutes);
            }
        }
    }

    /// <summary>One look for deliveries left behind (their replica stopped), across tenants.</summary>
    private async Task TakeOverAsync(CancellationToken cancellationToken)
    {
        List<WebhookDelivery> overdue;
        using (var scope = _scopes.CreateScope())
        {
            var before = _time.GetUtcNow() - Hold;
            overdue = await scope.ServiceProvider.GetRequiredService<IdentityDb>().Set<WebhookDelivery>().IgnoreQueryFilters().AsNoTracking()
                .Where(d => d.Status == WebhookDelivery.Pending && d.NextAttemptAt < before)
                .OrderBy(d => d.NextAttemptAt).Take(TakeOverBatch).ToListAsync(cancellationToken);
        }

        foreach (var delivery in overdue)
        {
            if (await _tenants.FindAsync(delivery.TenantId, cancellationToken) is not { } tenant
                || !await ClaimAsync(tenant, delivery.Id, delivery.Attempts, delivery.NextAttemptAt, cancellationToken))
            {
                continue;
            }

            if (await JobAsync(tenant, delivery, cancellationToken) is { } job)
            {
                _sends.Track(RunAsync(job, delivery.Id, delivery.Attempts, schedule: true, cancellationToken));
            }
        }
    }
}
