using System.Threading.Channels;

namespace IdentityService.Oidc;

/// <summary>
/// Posts the logout tokens <see cref="BackchannelLogout"/> makes, off the request that ended the sign-ins: a form with
/// <c>logout_token</c>, through the webhooks' HTTP client rules (no redirects; outside Development only public
/// addresses, checked at each connection), 5 s at most each. A 2xx answer is taken; anything else (or no answer) is
/// tried again 5 s and 30 s later, while the token is live. Several are sent at once, at most
/// <see cref="Concurrency"/>; at most <see cref="QueueLength"/> wait, further ones are dropped with a warning.
/// Kept in memory; when the service stops (a deploy's SIGTERM) it sends those queued and finishes those under way,
/// one waiting to be tried again getting its last attempt at once, within the host's shutdown timeout; a crash
/// drops them.
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

    private readonly Diagnostics.DrainedSends _sends = new(time);

    public sealed record Delivery(string TenantId, string ClientId, string Uri, string Token, DateTimeOffset ExpiresAt, int Attempt = 1);

    public void Enqueue(Delivery delivery)
    {
        if (!_queue.Writer.TryWrite(delivery))
        {
            logger.LogWarning("Back-channel logout queue full: client {Client} of tenant {Tenant} was not told of a logout.", delivery.ClientId, delivery.TenantId);
        }
    }

    /// <summary>Reads the queue until it is closed (when the service stops) and empty, so what is queued then is still sent.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var delivery in _queue.Reader.ReadAllAsync(CancellationToken.None))
        {
            await _running.WaitAsync(CancellationToken.None);
            _sends.Track(Task.Run(async () =>
            {
                try
                {
                    await SendAsync(delivery, _sends.Abandoned);
                }
                finally
                {
                    _running.Release();
                }
            }, CancellationToken.None));
        }
    }

    /// <summary>Closes the queue and waits for every token queued or under way, until <paramref name="cancellationToken"/> (the host's shutdown timeout).</summary>
    public override Task StopAsync(CancellationToken cancellationToken) =>
        _sends.StopAsync(() => base.StopAsync(cancellationToken), cancellationToken, closeQueue: () => _queue.Writer.TryComplete());

    private async Task SendAsync(Delivery delivery, CancellationToken stoppingToken)
    {
        string failure;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            using var content = new FormUrlEncodedContent([new KeyValuePair<string, string>("logout_token", delivery.Token)]);
            using var request = new HttpRequestMessage(HttpMethod.Post, delivery.Uri) { Content = content };
            // Its status is the client's answer: the body, whatever its size, is never read (nor held in memory).
            using var response = await clients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
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

        var again = delivery.Attempt <= Retries.Length && !_sends.Stopping ? time.GetUtcNow() + Retries[delivery.Attempt - 1] : (DateTimeOffset?)null;
        if (again is null || again >= delivery.ExpiresAt)
        {
            logger.LogWarning("Back-channel logout to client {Client} of tenant {Tenant} failed ({Failure}), attempt {Attempt}: given up.", delivery.ClientId, delivery.TenantId, failure, delivery.Attempt);
            return;
        }

        logger.LogWarning("Back-channel logout to client {Client} of tenant {Tenant} failed ({Failure}), attempt {Attempt}: tried again at {Again:O}.", delivery.ClientId, delivery.TenantId, failure, delivery.Attempt, again);
        _sends.Track(RetryAsync(delivery with { Attempt = delivery.Attempt + 1 }, Retries[delivery.Attempt - 1]));
    }

    /// <summary>Queues the token again after <paramref name="delay"/>; sends it at once, a last time, if the service stops meanwhile.</summary>
    private async Task RetryAsync(Delivery delivery, TimeSpan delay)
    {
        if (await _sends.WaitAsync(delay) && _queue.Writer.TryWrite(delivery))
        {
            return;
        }

        if (_sends.Stopping)
        {
            await SendAsync(delivery, _sends.Abandoned);
            return;
        }

        logger.LogWarning("Back-channel logout queue full: client {Client} of tenant {Tenant} was not told of a logout.", delivery.ClientId, delivery.TenantId);
    }
}
