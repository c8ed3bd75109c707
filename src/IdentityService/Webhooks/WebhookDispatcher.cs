using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Webhooks;

/// <summary>
/// Delivers audit events to the webhooks that subscribe to them, in the background: a sign-in or an admin action
/// never waits for a tenant's endpoint. Each delivery is a JSON POST (<c>type</c>, <c>timestamp</c>, <c>data</c>: the
/// event as the audit API shows it) signed as Standard Webhooks says; one that fails (no answer within
/// <see cref="Timeout"/>, or a status other than 2xx; redirects are not followed) is tried again after each delay of
/// <see cref="Retries"/>, with the same <c>webhook-id</c>, so a receiver can drop a repeat.
/// </summary>
/// <remarks>
/// <para>Every delivery is kept as a <see cref="WebhookDelivery"/> from the moment its event is: the event and a
/// pending delivery for each webhook subscribed to it are written in one transaction (<see cref="SaveAsync"/>), so
/// an event is never lost between the audit log and its webhooks, even when the process stops before or during the
/// first attempt. The row keeps each outcome for the tenant's admins (<c>GET .../webhooks/{id}/deliveries</c>, which
/// can send one again), and while it waits for an attempt, when that is due. The replica that wrote the event makes
/// the first attempt at once and waits for the retries in memory; a delivery still pending <see cref="Hold"/> past
/// its time (its replica stopped, or its queue was full) is taken over by whichever replica looks first (every
/// <see cref="Hold"/>). A replica takes a delivery only by moving its attempt count on from the one it read, so two
/// never try the same one at once.</para>
/// <para>A tenant's webhooks are cached, and evicted on every replica when they change.</para>
/// </remarks>
public sealed partial class WebhookDispatcher : BackgroundService
{
    public const string HttpClientName = "webhooks";
    public const string Channel = "webhooks-changed";
    public const int QueueLength = 10_000;
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan[] Retries = [TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10), TimeSpan.FromHours(1), TimeSpan.FromHours(6)];

    /// <summary>How long a replica trying a delivery holds it, and how often each looks for deliveries left behind.</summary>
    public static readonly TimeSpan Hold = TimeSpan.FromMinutes(1);

    private static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(5);

    private readonly Channel<Written> _queue =
        System.Threading.Channels.Channel.CreateBounded<Written>(new BoundedChannelOptions(QueueLength) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly MemoryCache _subscribers = new(new MemoryCacheOptions { SizeLimit = 20_000 });
    private readonly SemaphoreSlim _concurrency = new(32);
    private readonly IServiceScopeFactory _scopes;
    private readonly IHttpClientFactory _clients;
    private readonly IDataProtector _secrets;
    private readonly TenantDirectory _tenants;
    private readonly TimeProvider _time;
    private readonly ILogger<WebhookDispatcher> _logger;
    private readonly Diagnostics.DrainedSends _sends;
    private CancellationToken _stopping;

    public WebhookDispatcher(
        IServiceScopeFactory scopes, IHttpClientFactory clients, IDataProtectionProvider protection, IInvalidationBus bus, TenantDirectory tenants,
        TimeProvider time, ILogger<WebhookDispatcher> logger)
    {
        _scopes = scopes;
        _clients = clients;
        _secrets = Secrets(protection);
        _tenants = tenants;
        _time = time;
        _logger = logger;
        _sends = new(time);
        bus.Subscribe(Channel, tenantId => _subscribers.Remove(tenantId));
        bus.Subscribe(Tenancy.TenantDirectory.Channel, tenantId => _subscribers.Remove(tenantId));
    }

    internal static IDataProtector Secrets(IDataProtectionProvider protection) => protection.CreateProtector("IdentityService.Webhooks.Secret.v1");

    /// <summary>
    /// Saves the changes <paramref name="db"/> holds, among them <paramref name="entry"/> (a new audit event), with a
    /// pending delivery for each of the tenant's webhooks subscribed to it, in one transaction; then queues their
    /// first attempts. Never waits for an endpoint.
    /// </summary>
    public async Task SaveAsync(Tenant tenant, IdentityDb db, AuditEvent entry, CancellationToken cancellationToken)
    {
        List<Target> targets;
        try
        {
            targets = (await SubscribersAsync(tenant, cancellationToken)).Where(t => t.Events.Contains("*") || t.Events.Contains(entry.Type)).ToList();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The webhooks cannot be read (a secret Data Protection no longer reads): the event is still recorded.
            _logger.LogError(e, "Reading the webhooks of tenant {Tenant} failed: event {Type} is not delivered.", tenant.Id, entry.Type);
            targets = [];
        }

        if (targets.Count == 0)
        {
            await db.SaveChangesAsync(cancellationToken);
            return;
        }

        var now = _time.GetUtcNow();
        List<(Guid Row, Target Target)> deliveries = [];
        await db.InTurnAsync(async c =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(c);
            await db.SaveChangesAsync(c);
            if (!await AddDeliveriesAsync(db, entry, targets, now, deliveries, c))
            {
                // A webhook was deleted meanwhile (its row is gone): the others still get the event.
                var live = targets.Select(t => t.Id).ToList();
                live = await db.Set<Webhook>().Where(w => live.Contains(w.Id)).Select(w => w.Id).ToListAsync(c);
                await AddDeliveriesAsync(db, entry, targets.Where(t => live.Contains(t.Id)).ToList(), now, deliveries, c);
            }

            await transaction.CommitAsync(c);
            return deliveries.Count;
        }, cancellationToken);

        if (deliveries.Count > 0 && !_queue.Writer.TryWrite(new Written(tenant, entry, deliveries, now)))
        {
            _logger.LogWarning(
                "The webhook queue is full: event {Id} ({Type}) of tenant {Tenant} waits until a replica takes its deliveries over.", entry.Id, entry.Type, tenant.Id);
        }
    }

    /// <summary>Adds the event's pending deliveries, due now; false (none added) when one's webhook is gone.</summary>
    private static async Task<bool> AddDeliveriesAsync(
        IdentityDb db, AuditEvent entry, List<Target> targets, DateTimeOffset now, List<(Guid Row, Target Target)> deliveries, CancellationToken cancellationToken)
    {
        var rows = targets.Select(t => (Row: new WebhookDelivery
        {
            Id = Guid.NewGuid(), WebhookId = t.Id, EventId = entry.Id, EventType = entry.Type, Status = WebhookDelivery.Pending, CreatedAt = now, NextAttemptAt = now,
        }, Target: t)).ToList();
        db.AddRange(rows.Select(r => r.Row));
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // EF rolled back to the savepoint it took before saving: the event stays written.
            rows.ForEach(r => db.Entry(r.Row).State = EntityState.Detached);
            return false;
        }

        deliveries.AddRange(rows.Select(r => (r.Row.Id, r.Target)));
        return true;
    }

    /// <summary>
    /// Stops looking for work and waits, until <paramref name="cancellationToken"/> (the host's shutdown timeout), for the
    /// attempts under way to be answered (or time out) and kept, so that a deploy does not leave a delivery its
    /// endpoint has seen to be sent again. Deliveries not yet tried, or waiting for a retry, stay pending in the
    /// database for a replica or the next start.
    /// </summary>
    public override Task StopAsync(CancellationToken cancellationToken) => _sends.StopAsync(() => base.StopAsync(cancellationToken), cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        try
        {
            await Task.WhenAll(DispatchAsync(stoppingToken), TakeOverLoopAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task DispatchAsync(CancellationToken stoppingToken)
    {
        await foreach (var written in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                var body = Body(written.Entry);
                // Held back past half the hold, a delivery is taken again first: a replica may be about to take it over.
                var claim = _time.GetUtcNow() - written.At > Hold / 2;
                foreach (var (row, target) in written.Deliveries)
                {
                    if (!claim || await ClaimAsync(written.Tenant, row, 0, written.At, stoppingToken))
                    {
                        _sends.Track(RunAsync(new Job(written.Tenant, target, written.Entry.Id, written.Entry.Type, body), row, 0, schedule: true, stoppingToken));
                    }
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogError(e, "Dispatching event {Id} of tenant {Tenant} to its webhooks failed; a replica takes it over.", written.Entry.Id, written.Tenant.Id);
            }
        }
    }

    private static string Body(AuditEvent entry)
    {
        var data = AuditApi.View(entry);
        return new JsonObject { ["type"] = entry.Type, ["timestamp"] = data["time"]!.DeepClone(), ["data"] = data }.ToJsonString();
    }

    private async Task<IReadOnlyList<Target>> SubscribersAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        if (_subscribers.TryGetValue(tenant.Id, out IReadOnlyList<Target>? cached) && cached is not null)
        {
            return cached;
        }

        using var scope = _scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var hooks = await db.Set<Webhook>().AsNoTracking().ToListAsync(cancellationToken);
        IReadOnlyList<Target> targets = hooks.Select(h => new Target(h.Id, h.Url, h.Events.ToHashSet(StringComparer.Ordinal), _secrets.Unprotect(h.ProtectedSecret))).ToList();
        _subscribers.Set(tenant.Id, targets, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = CacheFor });
        return targets;
    }

    /// <summary>
    /// Tries a delivery until it is delivered, failed or (with <paramref name="schedule"/>) out of retries, keeping
    /// each outcome in its row.
    /// </summary>
    private async Task RunAsync(Job job, Guid rowId, int attempts, bool schedule, CancellationToken stoppingToken)
    {
        try
        {
            while (true)
            {
                var started = _time.GetUtcNow();
                var (status, error) = await AttemptAsync(job, attempts + 1, stoppingToken);
                // From here the attempt is kept even when the service is stopping (until its shutdown timeout).
                attempts++;
                var delivered = status is >= 200 and < 300;
                DateTimeOffset? next = !delivered && schedule && attempts <= Retries.Length ? started + Retries[attempts - 1] : null;
                var state = delivered ? WebhookDelivery.Delivered : next is null ? WebhookDelivery.Failed : WebhookDelivery.Pending;
                if (state == WebhookDelivery.Failed)
                {
                    _logger.LogError("Webhook {Webhook} of tenant {Tenant}: event {Id} not delivered after {Attempts} attempts.", job.Target.Id, job.Tenant.Id, job.EventId, attempts);
                }

                if (!await RecordAsync(job, rowId, attempts, started, status, error, state, next, _sends.Abandoned) || next is null)
                {
                    return;
                }

                // A retry is due its delay after the start of the attempt that failed.
                if (next.Value - _time.GetUtcNow() is { Ticks: > 0 } wait)
                {
                    await Task.Delay(wait, _time, stoppingToken);
                }

                if (!await ClaimAsync(job.Tenant, rowId, attempts, next, stoppingToken))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested || _sends.Abandoned.IsCancellationRequested)
        {
            // Stopping: a delivery waiting for an attempt, or in one past the shutdown timeout, stays pending for a replica (or this service's next start) to take over.
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Webhook {Webhook} of tenant {Tenant}: keeping the delivery of event {Id} failed.", job.Target.Id, job.Tenant.Id, job.EventId);
        }
    }

    /// <summary>
    /// One POST: the answer's status, or null and why the endpoint could not be reached. Not begun once the service is
    /// stopping; once begun, waited for until the service's shutdown timeout.
    /// </summary>
    private async Task<(int? Status, string? Error)> AttemptAsync(Job job, int attempt, CancellationToken stoppingToken)
    {
        await _concurrency.WaitAsync(stoppingToken);
        var abandoned = _sends.Abandoned;
        try
        {
            var status = await SendAsync(job.Target, job.EventId.ToString(System.Globalization.CultureInfo.InvariantCulture), job.Body, abandoned);
            if (status is < 200 or >= 300)
            {
                _logger.LogWarning("Webhook {Webhook} of tenant {Tenant} answered {Status} to event {Id} (attempt {Attempt}).", job.Target.Id, job.Tenant.Id, status, job.EventId, attempt);
            }

            return (status, status is >= 200 and < 300 ? null : $"The endpoint answered {status}.");
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !abandoned.IsCancellationRequested))
        {
            _logger.LogWarning("Webhook {Webhook} of tenant {Tenant} could not be reached for event {Id} (attempt {Attempt}): {Error}", job.Target.Id, job.Tenant.Id, job.EventId, attempt, e.Message);
            var error = e is OperationCanceledException ? $"No answer within {Timeout.TotalSeconds:0} seconds." : "The endpoint could not be reached: " + e.Message;
            return (null, error.Length > 300 ? error[..300] : error);
        }
        finally
        {
            _concurrency.Release();
        }
    }

    private async Task<int> SendAsync(Target target, string id, string body, CancellationToken stoppingToken)
    {
        var timestamp = _time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, target.Url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("webhook-id", id);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", StandardWebhooks.Sign(target.Secret, id, timestamp, body));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(Timeout);
        using var response = await _clients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        return (int)response.StatusCode;
    }

    public override void Dispose()
    {
        _subscribers.Dispose();
        _concurrency.Dispose();
        base.Dispose();
    }

    private sealed record Target(Guid Id, string Url, HashSet<string> Events, string Secret);

    private sealed record Job(Tenant Tenant, Target Target, long EventId, string EventType, string Body);

    /// <summary>An event just written, its deliveries' rows (pending, due <paramref name="At"/>) and their webhooks.</summary>
    private sealed record Written(Tenant Tenant, AuditEvent Entry, List<(Guid Row, Target Target)> Deliveries, DateTimeOffset At);
}
