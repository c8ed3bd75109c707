using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using IdentityService.Data;
using IdentityService.Oidc;
using IdentityService.Protection;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// Clients are kept in memory between token requests (<see cref="ClientCache"/>): every change to a client or to
/// its tenant takes effect with the next request, and a cached client is never written through.
/// </summary>
public sealed class ClientCacheTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string ClientId = "backend";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _secret = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync(Tenant);
        _secret = await CreateClientAsync(_factory, Tenant, ClientId);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task AGrant_CachesTheClient_AndTheNextGrantsAreServedFromIt()
    {
        Assert.False(IsCached(_factory, Tenant, ClientId));

        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
        Assert.True(IsCached(_factory, Tenant, ClientId));
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
    }

    [Fact]
    public async Task ASecretRotatedWithoutOverlap_IsRefusedRightAfter_ThoughTheClientWasCached()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);

        var rotated = await _factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients/{ClientId}/secret", new { overlapHours = 0 }, HttpStatusCode.OK);

        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, _secret)));
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, rotated["clientSecret"]!.GetValue<string>())).StatusCode);
    }

    [Fact]
    public async Task ADeletedClient_IsRefusedRightAfter()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);

        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{Tenant}/clients/{ClientId}")).StatusCode);

        Assert.False(IsCached(_factory, Tenant, ClientId));
        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, _secret)));
    }

    [Fact]
    public async Task ARemovedScopePermission_TakesEffectRightAfter()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret, scope: "email");

        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/clients/{ClientId}", new { scopes = new[] { "profile" } }, HttpStatusCode.OK);

        Assert.Contains("scope", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, _secret, scope: "email"), "invalid_request"));
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret, scope: "profile")).StatusCode);
    }

    [Fact]
    public async Task ChangedDefaultAudiences_AreInTheNextToken()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);

        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/clients/{ClientId}", new { defaultAudiences = new[] { "urn:api:new" } }, HttpStatusCode.OK);

        var token = await AccessTokenAsync(_factory, Tenant, ClientId, _secret);
        Assert.Contains("urn:api:new", new JsonWebToken(token).Audiences);
    }

    [Fact]
    public async Task ASuspendedTenant_IssuesNoToken_AndIssuesAgainWhenResumed()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);

        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}", new { suspended = true }, HttpStatusCode.OK);

        Assert.False(IsCached(_factory, Tenant, ClientId));
        Assert.Equal(HttpStatusCode.NotFound, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);

        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}", new { suspended = false }, HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
    }

    [Fact]
    public async Task ATenantDeletedAndMadeAgain_WithTheSameClientId_KnowsOnlyTheNewClientsSecret()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);

        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{Tenant}")).StatusCode);
        await _factory.CreateTenantAsync(Tenant);
        var newSecret = await CreateClientAsync(_factory, Tenant, ClientId);

        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, _secret)));
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, newSecret)).StatusCode);
    }

    [Fact]
    public async Task ACachedClient_IsNeverWrittenThrough_NorTrackedByAContext()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);
        using var scope = await _factory.TenantScopeAsync(Tenant);
        var manager = scope.ServiceProvider.GetRequiredService<TenantApplicationManager>();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();

        var cached = await manager.FindByClientIdAsync(ClientId);
        Assert.NotNull(cached);
        Assert.True(cached.IsSharedSnapshot);

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await manager.UpdateAsync(cached, "a new secret of enough length"));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await manager.DeleteAsync(cached));
        Assert.Throws<InvalidOperationException>(() => db.Attach(cached));
        Assert.Throws<InvalidOperationException>(() => db.Remove(cached));
        Assert.Empty(db.ChangeTracker.Entries<TenantApplication>());

        // The client to change is another instance, tracked by this request's context.
        var tracked = await manager.FindForChangeAsync(ClientId);
        Assert.NotNull(tracked);
        Assert.NotSame(cached, tracked);
        Assert.False(tracked.IsSharedSnapshot);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
    }

    [Fact]
    public async Task TheSameClientIdInTwoTenants_IsCachedForEachApart()
    {
        await _factory.CreateTenantAsync("bravo");
        var bravoSecret = await CreateClientAsync(_factory, "bravo", ClientId);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
            Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, "bravo", ClientId, _secret)));
            Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, "bravo", ClientId, bravoSecret)).StatusCode);
            Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, bravoSecret)));
        }

        // Alike clients of two tenants share one copy of what they have alike, and keep their own secrets.
        Assert.True(_factory.Services.GetRequiredService<ClientCache>().TryGet(Tenant, ClientId, out var acme));
        Assert.True(_factory.Services.GetRequiredService<ClientCache>().TryGet("bravo", ClientId, out var bravo));
        Assert.Contains("gt:client_credentials", acme!.Permissions);
        Assert.Same(acme.Permissions, bravo!.Permissions);
        Assert.Same(acme.ClientType, bravo.ClientType);
        Assert.NotEqual(acme.ClientSecret, bravo.ClientSecret);

        // Deleting the client of one tenant leaves the other's.
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/bravo/clients/{ClientId}")).StatusCode);
        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, "bravo", ClientId, bravoSecret)));
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
    }

    [Fact]
    public async Task AClientInUse_IsReadAgainInTheBackground_SoAChangeByHandIsSeenBeforeTheTtl()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);
        await DeleteByHandAsync();

        // Not told of the change: the cached client still serves, and 20 s on the next request starts a new read.
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
        _factory.Time.Advance(ClientCache.RefreshAfter);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);

        // The read finds the client gone, though the entry's 30 s have not passed.
        await Eventually.TrueAsync(() => !IsCached(_factory, Tenant, ClientId));
        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, _secret)));
    }

    [Fact]
    public async Task ARequest_KeepsTheClientItFound_ThoughTheCacheLetsItGoMeanwhile()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);
        using var request = _factory.Services.CreateScope();
        var directory = request.ServiceProvider.GetRequiredService<IdentityService.Tenancy.TenantDirectory>();
        request.ServiceProvider.GetRequiredService<IdentityService.Tenancy.TenantContext>().Set((await directory.FindAsync(Tenant, CancellationToken.None))!);
        var applications = request.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictApplicationManager>();
        var first = await applications.FindByClientIdAsync(ClientId);
        Assert.NotNull(first);

        // Deleted, and let go by the cache (as a background read that found it gone does) while the request runs:
        // OpenIddict's next look-up in the same request must not find it missing (it would answer with a 500).
        await DeleteByHandAsync();
        await _factory.Services.GetRequiredService<ClientCache>().EvictAsync(Tenant, ClientId);
        Assert.Same(first, await applications.FindByClientIdAsync(ClientId));

        // The next request sees it gone.
        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, _secret)));
    }

    [Fact]
    public async Task AClientCachedLongerThanTheTtl_IsNeverUsed()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);
        await DeleteByHandAsync();

        _factory.Time.Advance(ClientCache.Ttl);

        Assert.False(IsCached(_factory, Tenant, ClientId));
        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, _secret)));
        // Read past the TTL and not found: its entry, never served since, is dropped.
        Assert.Null(_factory.Services.GetRequiredService<ClientCache>().ReadAt(Tenant, ClientId));
    }

    [Fact]
    public async Task AClientBackAfterAnIdlePastTheTtl_IsReadAgain_AndKeepsItsInstanceWhenUnchanged()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);
        var cache = _factory.Services.GetRequiredService<ClientCache>();
        Assert.True(cache.TryGet(Tenant, ClientId, out var first));

        // Idle past the TTL: the grant reads the client before using it, finds it unchanged, keeps the instance.
        _factory.Time.Advance(ClientCache.Ttl + TimeSpan.FromSeconds(1));
        var back = _factory.Time.GetUtcNow();
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
        Assert.InRange(cache.ReadAt(Tenant, ClientId)!.Value, back, _factory.Time.GetUtcNow());
        Assert.True(cache.TryGet(Tenant, ClientId, out var again));
        Assert.Same(first, again);

        // Changed while idle: the read past the TTL gives the new row, as a new instance.
        await RenameByHandAsync(Tenant, "Renamed by hand");
        _factory.Time.Advance(ClientCache.Ttl + TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
        Assert.True(cache.TryGet(Tenant, ClientId, out var renamed));
        Assert.NotSame(first, renamed);
        Assert.Equal("Renamed by hand", renamed!.DisplayName);
    }

    [Fact]
    public async Task ABackgroundRead_KeepsAClientInUseCached_WithItsCurrentRow()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);
        await RenameByHandAsync(Tenant, "Renamed by hand");

        _factory.Time.Advance(ClientCache.RefreshAfter);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
        await Eventually.TrueAsync(() => _factory.Services.GetRequiredService<ClientCache>().TryGet(Tenant, ClientId, out var client)
            && client!.DisplayName == "Renamed by hand");

        // Read again at 20 s, the entry now lives 30 s from then: past the first read's TTL it still serves.
        _factory.Time.Advance(ClientCache.Ttl - ClientCache.RefreshAfter + TimeSpan.FromSeconds(1));
        Assert.True(IsCached(_factory, Tenant, ClientId));
    }

    [Fact]
    public async Task AnUnchangedClientReadAgain_KeepsItsInstance_AndLivesOnFromThatRead()
    {
        await WarmAsync(_factory, Tenant, ClientId, _secret);
        var cache = _factory.Services.GetRequiredService<ClientCache>();
        Assert.True(cache.TryGet(Tenant, ClientId, out var first));
        var firstRead = cache.ReadAt(Tenant, ClientId);

        _factory.Time.Advance(ClientCache.RefreshAfter);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
        await Eventually.TrueAsync(() => cache.ReadAt(Tenant, ClientId) >= firstRead + ClientCache.RefreshAfter);

        // Past the first read's TTL the entry still serves, and it is the same instance: nothing was rebuilt.
        _factory.Time.Advance(ClientCache.Ttl - ClientCache.RefreshAfter + TimeSpan.FromSeconds(1));
        Assert.True(cache.TryGet(Tenant, ClientId, out var now));
        Assert.Same(first, now);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
    }

    [Fact]
    public async Task ClientsReadAgainTogether_EachGetTheirOwnTenantsRow()
    {
        // The same client id in two tenants, both due at once: read in one batch, each keeps its own tenant's row.
        await _factory.CreateTenantAsync("bravo");
        var bravoSecret = await CreateClientAsync(_factory, "bravo", ClientId);
        await WarmAsync(_factory, Tenant, ClientId, _secret);
        await WarmAsync(_factory, "bravo", ClientId, bravoSecret);
        await RenameByHandAsync("bravo", "Bravo's, renamed by hand");

        _factory.Time.Advance(ClientCache.RefreshAfter);
        await Task.WhenAll(TokenAsync(_factory, Tenant, ClientId, _secret), TokenAsync(_factory, "bravo", ClientId, bravoSecret));

        var cache = _factory.Services.GetRequiredService<ClientCache>();
        await Eventually.TrueAsync(() => cache.TryGet("bravo", ClientId, out var bravo) && bravo!.DisplayName == "Bravo's, renamed by hand");
        Assert.True(cache.TryGet(Tenant, ClientId, out var acme));
        Assert.Equal(Tenant, acme!.TenantId);
        Assert.NotEqual("Bravo's, renamed by hand", acme.DisplayName);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_factory, Tenant, ClientId, _secret)).StatusCode);
        Assert.Equal("invalid_client", await ErrorAsync(await TokenAsync(_factory, Tenant, ClientId, bravoSecret)));
    }

    /// <summary>Written to the database without the API, so that no instance is told: only a read shows it.</summary>
    private async Task RenameByHandAsync(string tenant, string name)
    {
        using var scope = _factory.Services.CreateScope();
        await ClientRow(scope, tenant).ExecuteUpdateAsync(u => u.SetProperty(a => a.DisplayName, name));
    }

    private async Task DeleteByHandAsync()
    {
        using var scope = _factory.Services.CreateScope();
        await ClientRow(scope, Tenant).ExecuteDeleteAsync();
    }

    private static IQueryable<TenantApplication> ClientRow(IServiceScope scope, string tenant) =>
        scope.ServiceProvider.GetRequiredService<IdentityDb>().Applications.IgnoreQueryFilters().Where(a => a.TenantId == tenant && a.ClientId == ClientId);

    internal static async Task<string> CreateClientAsync(IdentityServiceFactory factory, string tenant, string clientId)
    {
        var client = await factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{tenant}/clients", new
        {
            clientId,
            generateSecret = true,
            grantTypes = new[] { "client_credentials" },
            scopes = new[] { "profile", "email" },
        });
        return client["clientSecret"]!.GetValue<string>();
    }

    internal static bool IsCached(IdentityServiceFactory factory, string tenant, string clientId) =>
        factory.Services.GetRequiredService<ClientCache>().TryGet(tenant, clientId, out _);

    /// <summary>A grant that puts the client in the replica's cache.</summary>
    internal static async Task WarmAsync(IdentityServiceFactory factory, string tenant, string clientId, string secret, string? scope = null)
    {
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(factory, tenant, clientId, secret, scope)).StatusCode);
        Assert.True(IsCached(factory, tenant, clientId));
    }

    internal static async Task<HttpResponseMessage> TokenAsync(IdentityServiceFactory factory, string tenant, string clientId, string secret, string? scope = null)
    {
        using var client = factory.CreateApi();
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials" };
        if (scope is not null)
        {
            form["scope"] = scope;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/t/{tenant}/connect/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(clientId)}:{Uri.EscapeDataString(secret)}")));
        var response = await client.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    internal static async Task<string> AccessTokenAsync(IdentityServiceFactory factory, string tenant, string clientId, string secret)
    {
        var response = await TokenAsync(factory, tenant, clientId, secret);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    internal static async Task<string?> ErrorAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, $"{(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("error").GetString();
    }

    /// <summary>Asserts the error code; returns the description.</summary>
    internal static async Task<string> ErrorAsync(HttpResponseMessage response, string expected)
    {
        Assert.Equal(expected, await ErrorAsync(response));
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error_description").GetString() ?? "";
    }
}

/// <summary>
/// Two replicas sharing one database and one Redis: a client changed on one is changed on the other at once,
/// though the other had it cached (it learns of the change through Redis, not from the cache's expiry).
/// </summary>
public sealed class ClientCacheReplicaTests : IAsyncLifetime
{
    private const string Tenant = "acme";
    private const string ClientId = "backend";
    private readonly string _prefix = TestRedis.NewPrefix();
    private readonly IdentityServiceFactory _first;
    private readonly IdentityServiceFactory _second;
    private string _secret = "";

    public ClientCacheReplicaTests(ITestOutputHelper output)
    {
        _first = new IdentityServiceFactory { Output = output }.WithRedis(_prefix);
        _second = new IdentityServiceFactory(_first) { Output = output }.WithRedis(_prefix);
    }

    public async Task InitializeAsync()
    {
        await _first.CreateTenantAsync(Tenant);
        _secret = await ClientCacheTests.CreateClientAsync(_first, Tenant, ClientId);
        await ClientCacheTests.WarmAsync(_second, Tenant, ClientId, _secret, scope: "email");
    }

    public async Task DisposeAsync()
    {
        _second.Dispose();
        _first.Dispose();
        await TestRedis.FlushAsync(_prefix);
    }

    [Fact]
    public async Task ASecretRotatedOnOneReplica_IsRefusedOnTheOther()
    {
        var evicted = ReceivedAt(_second, ClientCache.Channel);
        var rotated = await _first.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients/{ClientId}/secret", new { overlapHours = 0 }, HttpStatusCode.OK);
        Assert.Equal($"{Tenant}/{ClientId}", await evicted.WaitAsync(TimeSpan.FromSeconds(10)));

        Assert.False(ClientCacheTests.IsCached(_second, Tenant, ClientId));
        Assert.Equal("invalid_client", await ClientCacheTests.ErrorAsync(await ClientCacheTests.TokenAsync(_second, Tenant, ClientId, _secret)));
        Assert.Equal(HttpStatusCode.OK, (await ClientCacheTests.TokenAsync(_second, Tenant, ClientId, rotated["clientSecret"]!.GetValue<string>())).StatusCode);
    }

    [Fact]
    public async Task AClientDeletedOnOneReplica_IsRefusedOnTheOther()
    {
        var evicted = ReceivedAt(_second, ClientCache.Channel);
        Assert.Equal(HttpStatusCode.NoContent, (await _first.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{Tenant}/clients/{ClientId}")).StatusCode);
        await evicted.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal("invalid_client", await ClientCacheTests.ErrorAsync(await ClientCacheTests.TokenAsync(_second, Tenant, ClientId, _secret)));
    }

    [Fact]
    public async Task APermissionRemovedOnOneReplica_IsEnforcedOnTheOther()
    {
        var evicted = ReceivedAt(_second, ClientCache.Channel);
        await _first.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/clients/{ClientId}", new { scopes = new[] { "profile" } }, HttpStatusCode.OK);
        await evicted.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Contains("scope", await ClientCacheTests.ErrorAsync(await ClientCacheTests.TokenAsync(_second, Tenant, ClientId, _secret, scope: "email"), "invalid_request"));
    }

    [Fact]
    public async Task ATenantDeletedAndMadeAgainOnOneReplica_LeavesNoCachedClientOnTheOther()
    {
        var forgotten = ReceivedAt(_second, IdentityService.Tenancy.TenantDirectory.Channel);
        Assert.Equal(HttpStatusCode.NoContent, (await _first.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{Tenant}")).StatusCode);
        await forgotten.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(ClientCacheTests.IsCached(_second, Tenant, ClientId));

        await _first.CreateTenantAsync(Tenant);
        var newSecret = await ClientCacheTests.CreateClientAsync(_first, Tenant, ClientId);

        Assert.Equal("invalid_client", await ClientCacheTests.ErrorAsync(await ClientCacheTests.TokenAsync(_second, Tenant, ClientId, _secret)));
        Assert.Equal(HttpStatusCode.OK, (await ClientCacheTests.TokenAsync(_second, Tenant, ClientId, newSecret)).StatusCode);
    }

    /// <summary>A message on a channel at a replica, subscribed after the replica's caches, so they have handled it first.</summary>
    private static Task<string> ReceivedAt(IdentityServiceFactory replica, string channel)
    {
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        replica.Services.GetRequiredService<IInvalidationBus>().Subscribe(channel, m => received.TrySetResult(m));
        return received.Task;
    }
}
