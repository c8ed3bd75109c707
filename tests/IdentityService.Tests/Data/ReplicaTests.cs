using System.Net;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing.Handlers;

namespace IdentityService.Tests.Data;

/// <summary>Two instances of the service on one database behave as one: keys and the Data Protection key ring are shared.</summary>
public sealed class ReplicaTests(ITestOutputHelper output) : IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _first = new() { Output = output };
    private IdentityServiceFactory? _second;

    public void Dispose()
    {
        _second?.Dispose();
        _first.Dispose();
    }

    [Fact]
    public async Task TokensAndSessionsOfOneReplica_AreHonouredByTheOther()
    {
        await _first.CreateTenantAsync("acme");
        await _first.CreateWebClientAsync("acme");
        await _first.CreateUserAsync("acme", "ada@acme.test", Password);
        var cookies = new CookieContainer();
        using var browser = _first.CreateDefaultClient(new CookieContainerHandler(cookies));
        var tokens = await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        _second = new IdentityServiceFactory(_first) { Output = output };
        using var sameBrowserAtSecond = _second.CreateDefaultClient(new CookieContainerHandler(cookies));

        // The same published keys, read from the database, not generated again.
        Assert.Equal(await KeyIdsAsync(browser), await KeyIdsAsync(sameBrowserAtSecond));

        // A refresh token made by the first (encrypted with the tenant's key) is redeemed by the second.
        var refreshed = await new OidcFlow(sameBrowserAtSecond, "acme", "web").RefreshAsync(tokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);

        // The session cookie set by the first (protected by the shared Data Protection key ring) signs the person in at the second.
        var silent = new OidcFlow(sameBrowserAtSecond, "acme", "web");
        silent.Extra["prompt"] = "none";
        Assert.Contains("code=", OidcFlow.Location(await sameBrowserAtSecond.GetAsync(silent.AuthorizeUrl())).Query);
    }

    [Fact]
    public async Task ReplicasStartedTogether_OnANewDatabase_BothStartAndServe()
    {
        _second = new IdentityServiceFactory(_first) { Output = output };
        var replicas = new[] { _first, _second };

        // Both race to migrate and to create the system tenant, its keys and the bootstrap client.
        await Task.WhenAll(replicas.Select(r => Task.Run(() => r.Server)));

        foreach (var replica in replicas)
        {
            Assert.Equal(HttpStatusCode.OK, (await replica.ManageAsync(HttpMethod.Get, "/api/v1/tenants")).StatusCode);
        }
    }

    [Fact]
    public async Task OnADatabaseThatDoesNotExistYet_TheServiceCreatesItAndStarts()
    {
        // On PostgreSQL the database itself is missing (SQLite: the file), as on a first deployment; the first
        // instance creates it before taking the initialization lock, which needs a connection to it.
        using var fresh = new IdentityServiceFactory(null, createDatabase: false) { Output = output };

        Assert.Equal(HttpStatusCode.OK, (await fresh.ManageAsync(HttpMethod.Get, "/api/v1/tenants")).StatusCode);
    }

    private static async Task<string[]> KeyIdsAsync(HttpClient client) => [.. (await Jwks.KeyIdsAsync(client, "acme")).Order()];
}
