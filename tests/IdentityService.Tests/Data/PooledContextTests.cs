using System.Net;
using IdentityService.Data;
using IdentityService.Oidc;
using IdentityService.Tests.Infrastructure;
using IdentityService.Tests.Oidc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Data;

/// <summary>
/// Database contexts are pooled and serve one tenant after another: a context returned to the pool carries no
/// tenant, and one leased by a scope filters by that scope's tenant alone, however requests of two tenants interleave.
/// </summary>
public sealed class PooledContextTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string A = "acme";
    private const string B = "bravo";
    private const string ClientId = "backend";
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private readonly Dictionary<string, string> _secrets = [];
    private readonly Dictionary<string, string> _users = [];

    public async Task InitializeAsync()
    {
        foreach (var tenant in new[] { A, B })
        {
            await _factory.CreateTenantAsync(tenant);
            _secrets[tenant] = await ClientCacheTests.CreateClientAsync(_factory, tenant, ClientId);
            _users[tenant] = await _factory.CreateUserAsync(tenant, "sam@example.test", Password);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task AContextReturnedToThePool_CarriesNoTenant_AndTheNextScopeSeesOnlyItsOwn()
    {
        var scopes = _factory.Services.GetRequiredService<IServiceScopeFactory>();
        var leases = new List<IdentityDb>();
        for (var i = 0; i < 6; i++)
        {
            var tenant = i % 2 == 0 ? A : B;
            IdentityDb leased;
            using (var scope = await _factory.TenantScopeAsync(tenant))
            {
                leased = scope.ServiceProvider.GetRequiredService<IdentityDb>();
                Assert.Equal(tenant, leased.CurrentTenantId);
                var ids = await leased.Users.Select(u => u.Id).ToListAsync();
                Assert.Equal([Guid.Parse(_users[tenant])], ids);
            }

            Assert.Null(leased.CurrentTenantId);

            using var unbound = scopes.CreateScope();
            var db = unbound.ServiceProvider.GetRequiredService<IdentityDb>();
            Assert.Null(db.CurrentTenantId);
            Assert.Empty(await db.Users.ToListAsync());
            Assert.Empty(await db.Applications.ToListAsync());
            leases.AddRange([leased, db]);
        }

        // The pool handed the same contexts out again, to one tenant after the other.
        Assert.True(leases.Distinct().Count() < leases.Count);
    }

    [Fact]
    public async Task EveryLeaseOfAPooledContext_RefusesToTrackACachedClient()
    {
        Assert.Equal(HttpStatusCode.OK, (await ClientCacheTests.TokenAsync(_factory, A, ClientId, _secrets[A])).StatusCode);
        for (var i = 0; i < 4; i++)
        {
            using var scope = await _factory.TenantScopeAsync(A);
            var cached = await scope.ServiceProvider.GetRequiredService<TenantApplicationManager>().FindByClientIdAsync(ClientId);
            Assert.True(cached!.IsSharedSnapshot);
            Assert.Throws<InvalidOperationException>(() => scope.ServiceProvider.GetRequiredService<IdentityDb>().Attach(cached));
        }
    }

    [Fact]
    public async Task RequestsOfTwoTenantsInterleaved_EachSeeOnlyTheirTenant()
    {
        var work = Enumerable.Range(0, 40).Select(async i =>
        {
            var tenant = i % 2 == 0 ? A : B;
            var other = tenant == A ? B : A;
            switch (i % 4)
            {
                case 0 or 1:
                    Assert.Equal(HttpStatusCode.OK, (await ClientCacheTests.TokenAsync(_factory, tenant, ClientId, _secrets[tenant])).StatusCode);
                    Assert.Equal("invalid_client", await ClientCacheTests.ErrorAsync(await ClientCacheTests.TokenAsync(_factory, tenant, ClientId, _secrets[other])));
                    break;
                default:
                    var users = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{tenant}/users", expected: HttpStatusCode.OK);
                    var ids = users["items"]!.AsArray().Select(u => u!["id"]!.GetValue<string>()).ToList();
                    Assert.Equal([_users[tenant]], ids);
                    break;
            }
        });

        await Task.WhenAll(work);
    }
}
