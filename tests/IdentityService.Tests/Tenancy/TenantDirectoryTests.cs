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

    private async Task SuspendByHandAsync()
    {
        using var scope = _factory.Services.CreateScope();
        await scope.ServiceProvider.GetRequiredService<IdentityDb>().Tenants
            .Where(t => t.Id == Tenant).ExecuteUpdateAsync(u => u.SetProperty(t => t.Suspended, true));
    }
}
