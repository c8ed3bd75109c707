using System.Threading.Channels;

namespace IdentityService.Oidc;

/// <summary>
/// Posts the logout tokens <see cref="BackchannelLogout"/> makes, off the request that ended the sign-ins: a form with
/// <c>logout_token</c>, through the webhooks' HTTP client rules (no redirects; outside Development only public
/// addresses, checked at each connection), 5 s at most each. A 2xx answer is taken; anything else (or no answer) is
/// tried again 5 s and 30 s later, while the token is live. Several are sent at once, at most
/// <see cref="Concurrency"/>; at most <see cref="QueueLength"/> wait, further ones are dropped with a warning.
/// Kept in memory: a token waiting when the process stops is not sent (it would expire within 2 minutes anyway).
/// </summary>
public sealed class BackchannelLogoutSender(IHttpClientFactory clients, TimeProvider time, ILogger<BackchannelLogoutSender> logger) : BackgroundService
{
    public const string HttpClientName = "backchannel-logout";

    internal const int QueueLength = 10_000;

    internal const int Concurrency = 8;

    private static readonly TimeSpan[] Retries = [TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)];

    private readonly Channel<Delivery> _queue = Channel.CreateBounded<Delivery>(
        new BoundedChannelOptions(QueueLength) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });

    private readonly SemaphoreSlim _running = new(Concurrency, Concurrency);

    public sealed record Delivery(string TenantId, string ClientId, string Uri, string Token, DateTimeOffset ExpiresAt, int Attempt = 1);

    public void Enqueue(Delivery delivery)
    {
        if (!_queue.Writer.TryWrite(delivery))
        {
            logger.LogWarning("Back-channel logout queue full: client {Client} of tenant {Tenant} was not told of a logout.", delivery.ClientId, delivery.TenantId);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var delivery in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                await _running.WaitAsync(stoppingToken);
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await SendAsync(delivery, stoppingToken);
                    }
                    finally
                    {
                        _running.Release();
                    }
                }, CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task SendAsync(Delivery delivery, CancellationToken stoppingToken)
    {
        string failure;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            using var content = new FormUrlEncodedContent([new KeyValuePair<string, string>("logout_token", delivery.Token)]);
            using var response = await clients.CreateClient(HttpClientName).PostAsync(delivery.Uri, content, timeout.Token);
            if (response.IsSuccessStatusCode)
            {
                logger.LogInformation("Back-channel logout sent to client {Client} of tenant {Tenant} (attempt {Attempt}).", delivery.ClientId, delivery.TenantId, delivery.Attempt);
                return;
            }

            failure = $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception e) when (!stoppingToken.IsCancellationRequested)
        {
            failure = e is OperationCanceledException ? "no answer within 5 s" : e.Message;
        }
        catch (OperationCanceledException)
        {
            return;
        }

        var again = delivery.Attempt <= Retries.Length ? time.GetUtcNow() + Retries[delivery.Attempt - 1] : (DateTimeOffset?)null;
        if (again is null || again >= delivery.ExpiresAt)
        {
            logger.LogWarning("Back-channel logout to client {Client} of tenant {Tenant} failed ({Failure}), attempt {Attempt}: given up.", delivery.ClientId, delivery.TenantId, failure, delivery.Attempt);
            return;
        }

        logger.LogWarning("Back-channel logout to client {Client} of tenant {Tenant} failed ({Failure}), attempt {Attempt}: tried again at {Again:O}.", delivery.ClientId, delivery.TenantId, failure, delivery.Attempt, again);
        _ = RetryAsync(delivery with { Attempt = delivery.Attempt + 1 }, Retries[delivery.Attempt - 1], stoppingToken);
    }

    private async Task RetryAsync(Delivery delivery, TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, time, stoppingToken);
            Enqueue(delivery);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
