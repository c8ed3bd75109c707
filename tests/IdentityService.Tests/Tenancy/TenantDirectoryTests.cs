using System.Net;
using IdentityService.Data;
using IdentityService.Tenancy;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Tenancy;

/// <summary>
/// Tenants are cached for every tenant-scoped request (<see cref="TenantDirectory"/>). A change through the API
/// evicts at once (tested with the management API); a change the instance is not told of (by hand, or on a
/// replica without Redis) is seen once the tenant in use has been read again in the background, and never later
/// than the TTL.
/// </summary>
public sealed class TenantDirectoryTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Discovery = "/t/acme/.well-known/openid-configuration";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public Task InitializeAsync() => _factory.CreateTenantAsync(Tenant);

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ATenantInUse_IsReadAgainInTheBackground_SoASuspensionByHandIsSeenBeforeTheTtl()
    {
        using var client = _factory.CreateApi();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Discovery)).StatusCode);
        await SuspendByHandAsync();

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Discovery)).StatusCode);
        _factory.Time.Advance(TenantDirectory.RefreshAfter);
        // This request is served from the entry it found, and starts the new read.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Discovery)).StatusCode);

        await Eventually.TrueAsync(async () => (await client.GetAsync(Discovery)).StatusCode == HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task ATenantCachedLongerThanTheTtl_IsReadAgainBeforeItsNextRequest()
    {
        using var client = _factory.CreateApi();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Discovery)).StatusCode);
        await SuspendByHandAsync();

        _factory.Time.Advance(TenantDirectory.Ttl);

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(Discovery)).StatusCode);
    }

    [Fact]
    public async Task AnUnchangedTenantReadAgain_KeepsItsInstance_AndLivesOnFromThatRead()
    {
        var directory = _factory.Services.GetRequiredService<TenantDirectory>();
        var first = await directory.FindAsync(Tenant, CancellationToken.None);
        var firstRead = directory.ReadAt(Tenant);

        _factory.Time.Advance(TenantDirectory.RefreshAfter);
        Assert.Same(first, await directory.FindAsync(Tenant, CancellationToken.None));
        await Eventually.TrueAsync(() => directory.ReadAt(Tenant) >= firstRead + TenantDirectory.RefreshAfter);

        // Past the first read's TTL the entry still serves the same instance (the state built on it stays too).
        _factory.Time.Advance(TenantDirectory.Ttl - TenantDirectory.RefreshAfter + TimeSpan.FromSeconds(1));
        Assert.Same(first, await directory.FindAsync(Tenant, CancellationToken.None));
        using var client = _factory.CreateApi();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Discovery)).StatusCode);
    }

    [Fact]
    public async Task ATenantBackAfterAnIdlePastTheTtl_IsReadAgain_AndKeepsItsInstanceWhenUnchanged()
    {
        using var client = _factory.CreateApi();
        var (directory, states, first, state) = await InUseAsync(client);

        // Idle past the TTL: the request reads the tenant before it is served, finds it unchanged, keeps the instance.
        _factory.Time.Advance(TenantDirectory.Ttl + TimeSpan.FromSeconds(1));
        var back = _factory.Time.GetUtcNow();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Discovery)).StatusCode);
        Assert.InRange(directory.ReadAt(Tenant)!.Value, back, _factory.Time.GetUtcNow());
        Assert.Same(first, await directory.FindAsync(Tenant, CancellationToken.None));
        Assert.Same(state, await states.GetAsync(first, CancellationToken.None));

        // Changed while idle: the read past the TTL gives the new row, as a new instance.
        await RenameByHandAsync("Renamed by hand");
        _factory.Time.Advance(TenantDirectory.Ttl + TimeSpan.FromSeconds(1));
        var renamed = await directory.FindAsync(Tenant, CancellationToken.None);
        Assert.NotSame(first, renamed);
        Assert.Equal("Renamed by hand", renamed!.DisplayName);
    }

    [Fact]
    public async Task ATenantReadAgainAfterItsEntryWasLetGo_IsHeldOnce_ByTheDirectoryAndItsOpenIdConnectState()
    {
        using var client = _factory.CreateApi();
        var (directory, states, first, state) = await InUseAsync(client);

        // The directory lets the entry go (evicted unchanged here; idle past its retention in service) while the
        // tenant's OpenID Connect state stays: the tenant is read anew, unchanged, as a new instance.
        await directory.EvictAsync(Tenant);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Discovery)).StatusCode);
        var again = await directory.FindAsync(Tenant, CancellationToken.None);
        Assert.NotSame(first, again);

        Assert.Same(state, await states.GetAsync(again!, CancellationToken.None));
        Assert.Same(again, state.Tenant);
        Assert.Equal("ES256", state.Tenant.AccessTokenAlgorithm);
        Assert.Same("ES256", again!.AccessTokenAlgorithm);
    }

    [Fact]
    public async Task ATenantReadAgain_WithAnApiResourceAddedByHand_IsReplaced()
    {
        // A change only in a list column (a primitive collection) is a change too.
        var directory = _factory.Services.GetRequiredService<TenantDirectory>();
        var first = await directory.FindAsync(Tenant, CancellationToken.None);
        using (var scope = _factory.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            var row = await db.Tenants.SingleAsync(t => t.Id == Tenant);
            row.ApiResources = [.. row.ApiResources, "https://api.example.com"];
            await db.SaveChangesAsync();
        }

        _factory.Time.Advance(TenantDirectory.RefreshAfter);
        await directory.FindAsync(Tenant, CancellationToken.None);
        await Eventually.TrueAsync(async () => (await directory.FindAsync(Tenant, CancellationToken.None))!.ApiResources.Contains("https://api.example.com"));
        Assert.NotSame(first, await directory.FindAsync(Tenant, CancellationToken.None));
    }

    /// <summary>The tenant in use (its discovery document served): the directory, the states, its instance and its state.</summary>
    private async Task<(TenantDirectory Directory, IdentityService.Oidc.TenantOidcStateCache States, IdentityService.Tenancy.Tenant First, IdentityService.Oidc.TenantOidcState State)> InUseAsync(HttpClient client)
    {
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Discovery)).StatusCode);
        var directory = _factory.Services.GetRequiredService<TenantDirectory>();
        var states = _factory.Services.GetRequiredService<IdentityService.Oidc.TenantOidcStateCache>();
        var first = (await directory.FindAsync(Tenant, CancellationToken.None))!;
        return (directory, states, first, await states.GetAsync(first, CancellationToken.None));
    }

    private async Task RenameByHandAsync(string name)
    {
        using var scope = _factory.Services.CreateScope();
        await scope.ServiceProvider.GetRequiredService<IdentityDb>().Tenants
            .Where(t => t.Id == Tenant).ExecuteUpdateAsync(u => u.SetProperty(t => t.DisplayName, name));
    }

    private async Task SuspendByHandAsync()
    {
        using var scope = _factory.Services.CreateScope();
        await scope.ServiceProvider.GetRequiredService<IdentityDb>().Tenants
            .Where(t => t.Id == Tenant).ExecuteUpdateAsync(u => u.SetProperty(t => t.Suspended, true));
    }
}
