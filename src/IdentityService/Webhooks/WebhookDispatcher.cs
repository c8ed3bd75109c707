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
/// Deliveries waiting for a retry are kept in memory: a restart drops them (the audit log keeps every event, for a
/// receiver to catch up from). Events beyond <see cref="QueueLength"/> waiting to be dispatched are dropped, with
/// an error logged, rather than slowing sign-ins. A tenant's webhooks are cached, and evicted on every replica when
/// they change.
/// </remarks>
public sealed class WebhookDispatcher : BackgroundService
{
    public const string HttpClientName = "webhooks";
    public const string Channel = "webhooks-changed";
    public const int QueueLength = 10_000;
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan[] Retries = [TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10), TimeSpan.FromHours(1), TimeSpan.FromHours(6)];
    private static readonly TimeSpan CacheFor = TimeSpan.FromMinutes(5);

    private readonly Channel<(Tenant Tenant, AuditEvent Entry)> _queue =
        System.Threading.Channels.Channel.CreateBounded<(Tenant, AuditEvent)>(new BoundedChannelOptions(QueueLength) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly MemoryCache _subscribers = new(new MemoryCacheOptions { SizeLimit = 20_000 });
    private readonly SemaphoreSlim _concurrency = new(32);
    private readonly IServiceScopeFactory _scopes;
    private readonly IHttpClientFactory _clients;
    private readonly IDataProtector _secrets;
    private readonly TimeProvider _time;
    private readonly ILogger<WebhookDispatcher> _logger;

    public WebhookDispatcher(
        IServiceScopeFactory scopes, IHttpClientFactory clients, IDataProtectionProvider protection, IInvalidationBus bus, TimeProvider time, ILogger<WebhookDispatcher> logger)
    {
        _scopes = scopes;
        _clients = clients;
        _secrets = Secrets(protection);
        _time = time;
        _logger = logger;
        bus.Subscribe(Channel, tenantId => _subscribers.Remove(tenantId));
    }

    internal static IDataProtector Secrets(IDataProtectionProvider protection) => protection.CreateProtector("IdentityService.Webhooks.Secret.v1");

    /// <summary>Queues an event just written to a tenant's audit log for its webhooks. Never waits.</summary>
    public void Enqueue(Tenant tenant, AuditEvent entry)
    {
        if (!_queue.Writer.TryWrite((tenant, entry)))
        {
            _logger.LogError("The webhook queue is full: event {Id} ({Type}) of tenant {Tenant} is not delivered.", entry.Id, entry.Type, tenant.Id);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (tenant, entry) in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    var targets = (await SubscribersAsync(tenant, stoppingToken)).Where(t => t.Events.Contains("*") || t.Events.Contains(entry.Type)).ToList();
                    if (targets.Count == 0)
                    {
                        continue;
                    }

                    var data = AuditApi.View(entry);
                    var body = new JsonObject { ["type"] = entry.Type, ["timestamp"] = data["time"]!.DeepClone(), ["data"] = data }.ToJsonString();
                    foreach (var target in targets)
                    {
                        _ = DeliverAsync(tenant.Id, target, entry.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), body, stoppingToken);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _logger.LogError(e, "Dispatching event {Id} of tenant {Tenant} to its webhooks failed.", entry.Id, tenant.Id);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
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

    private async Task DeliverAsync(string tenantId, Target target, string id, string body, CancellationToken stoppingToken)
    {
        var started = _time.GetUtcNow();
        for (var attempt = 0; attempt <= Retries.Length; attempt++)
        {
            try
            {
                // A retry is due its delay after the start of the attempt that failed.
                if (attempt > 0 && started + Retries[attempt - 1] - _time.GetUtcNow() is { Ticks: > 0 } wait)
                {
                    await Task.Delay(wait, _time, stoppingToken);
                }

                started = _time.GetUtcNow();

                await _concurrency.WaitAsync(stoppingToken);
                try
                {
                    var status = await SendAsync(target, id, body, stoppingToken);
                    if (status is >= 200 and < 300)
                    {
                        return;
                    }

                    _logger.LogWarning("Webhook {Webhook} of tenant {Tenant} answered {Status} to event {Id} (attempt {Attempt}).", target.Id, tenantId, status, id, attempt + 1);
                }
                finally
                {
                    _concurrency.Release();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                _logger.LogWarning("Webhook {Webhook} of tenant {Tenant} could not be reached for event {Id} (attempt {Attempt}): {Error}", target.Id, tenantId, id, attempt + 1, e.Message);
            }
        }

        _logger.LogError("Webhook {Webhook} of tenant {Tenant}: event {Id} not delivered after {Attempts} attempts.", target.Id, tenantId, id, Retries.Length + 1);
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
}
