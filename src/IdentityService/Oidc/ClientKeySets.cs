using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Oidc;

/// <summary>
/// The public keys of clients that publish them at a <c>jwks_uri</c> (<see cref="TenantApplication.JwksUri"/>), so
/// that they rotate their keys without calling the management API: fetched when an assertion of the client arrives
/// (<see cref="ClientAssertions.FetchPublishedKeys"/>, before OpenIddict checks its signature against
/// <see cref="Held"/>), and kept <see cref="FreshFor"/>. An assertion signed with a key (<c>kid</c>) the set held
/// does not have fetches it again at once (a rotation), at most once every <see cref="RefetchAfter"/> (an attacker's
/// made-up <c>kid</c> costs the client's server one request in that time); one signed with a key of an older set is
/// checked against it while the set is fetched again off the request. A set that can no longer be fetched (the
/// client's server down) is used for <see cref="KeptFor"/> after its last fetch. The keys must pass the rules of keys
/// given inline (<see cref="Management.ClientKeys"/>: public, strong, signature keys); a set that breaks them is not
/// taken. Fetched through the webhooks' HTTP client rules (no redirects; outside Development only public addresses),
/// 5 s and <see cref="MaxBytes"/> at most; one fetch at a time per set, shared by the requests that need it, and at
/// most <see cref="FetchesPerTenant"/> at a time per tenant, so one tenant's slow servers hold no other tenant.
/// </summary>
public sealed class ClientKeySets(IHttpClientFactory clients, TimeProvider time, ILogger<ClientKeySets> logger)
{
    public const string HttpClientName = "client-jwks";

    public static readonly TimeSpan FreshFor = TimeSpan.FromMinutes(5);

    public static readonly TimeSpan RefetchAfter = TimeSpan.FromSeconds(10);

    public static readonly TimeSpan KeptFor = TimeSpan.FromHours(24);

    internal const int MaxBytes = 64 * 1024;

    /// <summary>Sets held at most; past it, those not fetched for <see cref="KeptFor"/> are dropped.</summary>
    internal const int MaxSets = 10_000;

    /// <summary>Fetches a tenant has under way at most: its clients' slow servers hold its own requests, no other tenant's.</summary>
    internal const int FetchesPerTenant = 8;

    /// <summary>The longest a request waits for a fetch (the fetch's own limit).</summary>
    internal static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<(string Tenant, string Uri), Fetched> _sets = new();

    /// <summary>The fetch under way for each set: requests needing the same set share it.</summary>
    private readonly ConcurrentDictionary<(string Tenant, string Uri), Lazy<Task>> _underWay = new();

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _tenantGates = new();

    /// <summary>Fetches from the client's servers so far: for the tests.</summary>
    internal long Fetches => Interlocked.Read(ref _fetches);

    private long _fetches;

    /// <summary>The keys published at <paramref name="uri"/> for a client of <paramref name="tenantId"/>, or null when none can be used.</summary>
    public JsonWebKeySet? Held(string tenantId, string uri) =>
        _sets.TryGetValue((tenantId, uri), out var held) && held.Keys is { } keys && time.GetUtcNow() - held.FetchedAt < KeptFor ? keys : null;

    /// <summary>
    /// Makes sure the set held for <paramref name="uri"/> is fresh and has the key <paramref name="kid"/> (any key when
    /// null): fetches it if not, unless it was tried within <see cref="RefetchAfter"/>.
    /// </summary>
    public async Task RefreshAsync(string tenantId, string clientId, string uri, string? kid, CancellationToken cancellationToken)
    {
        var key = (tenantId, uri);
        if (Serves(key, kid))
        {
            return;
        }

        if (kid is not null && Held(tenantId, uri) is { } held && Has(held, kid))
        {
            // Older than FreshFor but with the key: this assertion is checked against it, and the set is fetched again
            // off the request (a single fetch at a time: a request that finds one under way leaves it).
            _ = Task.Run(() => FetchAsync(key, clientId, kid, wait: false, CancellationToken.None), CancellationToken.None);
            return;
        }

        await FetchAsync(key, clientId, kid, wait: true, cancellationToken);
    }

    /// <summary>
    /// Starts the set's fetch, or joins the one under way; a request (<paramref name="wait"/>) waits for it at most
    /// <see cref="FetchTimeout"/> (then it is checked against what is held). The fetch itself belongs to no request.
    /// </summary>
    private async Task FetchAsync((string Tenant, string Uri) key, string clientId, string? kid, bool wait, CancellationToken cancellationToken)
    {
        var mine = new Lazy<Task>(() => FetchOnceAsync(key, clientId, kid));
        var fetch = _underWay.GetOrAdd(key, mine);
        if (ReferenceEquals(fetch, mine))
        {
            _ = mine.Value.ContinueWith(_ => _underWay.TryRemove(new KeyValuePair<(string, string), Lazy<Task>>(key, mine)), CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        if (!wait)
        {
            return;
        }

        try
        {
            await fetch.Value.WaitAsync(FetchTimeout, TimeProvider.System, cancellationToken);
        }
        catch (TimeoutException)
        {
        }
    }

    private async Task FetchOnceAsync((string Tenant, string Uri) key, string clientId, string? kid)
    {
        var (tenantId, uri) = key;
        var gate = _tenantGates.GetOrAdd(tenantId, _ => new SemaphoreSlim(FetchesPerTenant, FetchesPerTenant));
        if (!await gate.WaitAsync(FetchTimeout, CancellationToken.None))
        {
            logger.LogWarning("The keys of client {Client} of tenant {Tenant} were not fetched: {Count} fetches of the tenant were under way.", clientId, tenantId, FetchesPerTenant);
            return;
        }

        try
        {
            var now = time.GetUtcNow();
            _sets.TryGetValue(key, out var held);
            if (Serves(key, kid) || (held is not null && now - held.TriedAt < RefetchAfter))
            {
                return;
            }

            Interlocked.Increment(ref _fetches);
            var (keys, failure) = await GetAsync(uri, CancellationToken.None);
            if (keys is null)
            {
                logger.LogWarning("The keys of client {Client} of tenant {Tenant} could not be fetched from its jwks_uri: {Failure}.", clientId, tenantId, failure);
            }

            if (_sets.Count >= MaxSets)
            {
                foreach (var old in _sets.Where(s => now - s.Value.TriedAt >= KeptFor).Select(s => s.Key).ToList())
                {
                    _sets.TryRemove(old, out _);
                }
            }

            _sets[key] = keys is null && held is not null
                ? held with { TriedAt = now }
                : new Fetched(keys, keys is null ? DateTimeOffset.MinValue : now, now);
        }
        finally
        {
            gate.Release();
        }
    }

    private bool Serves((string Tenant, string Uri) key, string? kid) =>
        _sets.TryGetValue(key, out var held) && held.Keys is { } keys && time.GetUtcNow() - held.FetchedAt < FreshFor
        && (kid is null || Has(keys, kid));

    private static bool Has(JsonWebKeySet keys, string kid) => keys.Keys.Any(k => string.Equals(k.Kid, kid, StringComparison.Ordinal));

    private async Task<(JsonWebKeySet? Keys, string? Failure)> GetAsync(string uri, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/jwk-set+json"));
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            // The named client buffers at most MaxBytes of the body (more fails the request, with or without a length).
            using var response = await clients.CreateClient(HttpClientName).SendAsync(request, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                return (null, $"HTTP {(int)response.StatusCode}");
            }

            using var document = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(timeout.Token));
            var (keys, error) = Management.ClientKeys.Parse(document.RootElement);
            return (keys, error is null ? null : "keys refused: " + error);
        }
        catch (JsonException)
        {
            return (null, "not JSON");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return (null, e is OperationCanceledException ? "no answer within 5 s" : e.Message);
        }
    }

    /// <summary>A set as last fetched (<paramref name="Keys"/> null when none ever was), and when it was, and last tried.</summary>
    private sealed record Fetched(JsonWebKeySet? Keys, DateTimeOffset FetchedAt, DateTimeOffset TriedAt);
}
