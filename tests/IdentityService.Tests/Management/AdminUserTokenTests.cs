using System.Net;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Management;

/// <summary>
/// A tenant admin who manages through an app they signed in to (an access token with the <c>manage</c> scope): the
/// token manages only while the person may. Signed out everywhere, disabled, no longer an admin or deleted, their
/// token is refused at once, not when it expires.
/// </summary>
public sealed class AdminUserTokenTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _ada = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme", scopes: ["openid", "manage"]);
        _ada = await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { roles = new[] { "admin" } });
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Theory]
    [InlineData("signout")]
    [InlineData("disable")]
    [InlineData("demote")]
    [InlineData("delete")]
    public async Task AnAdminsToken_IsRefused_OnceThePersonMayNoLongerManage(string action)
    {
        using var browser = _factory.CreateBrowser();
        var token = (await new OidcFlow(browser, "acme", "web") { Scope = "openid manage" }.SignInAsync("ada@acme.test", Password))
            .GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: token)).StatusCode);

        var done = action switch
        {
            "signout" => await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{_ada}/signout"),
            "disable" => await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_ada}", new { disabled = true }),
            "demote" => await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_ada}", new { roles = Array.Empty<string>() }),
            _ => await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{_ada}"),
        };
        Assert.True(done.IsSuccessStatusCode, $"{action}: {done.StatusCode}");
        _factory.Time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal(HttpStatusCode.Unauthorized, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: token)).StatusCode);
        var backdoor = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "backdoor",
            generateSecret = true,
            grantTypes = new[] { "client_credentials" },
            scopes = new[] { "manage" },
        }, token);
        Assert.Equal(HttpStatusCode.Unauthorized, backdoor.StatusCode);
    }
}
