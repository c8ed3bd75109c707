using System.Net;
using IdentityService.Data;
using IdentityService.Tenancy;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Oidc;

/// <summary>Client-credentials access tokens cost no database write, and stay revocable.</summary>
public sealed class RowlessTokenTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _secret = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        var client = await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients",
            new { clientId = "ops", generateSecret = true, grantTypes = new[] { "client_credentials" }, scopes = new[] { "manage" } });
        _secret = client["clientSecret"]!.GetValue<string>();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ClientCredentialsGrant_WritesNoTokenRow()
    {
        var before = await TokenRowsAsync();

        for (var i = 0; i < 3; i++)
        {
            await _factory.ClientCredentialsTokenAsync("acme", "ops", _secret, "manage");
        }

        Assert.Equal(before, await TokenRowsAsync());
    }

    [Fact]
    public async Task RevokedRowlessToken_IsRefusedByTheManagementApi()
    {
        var token = await _factory.ClientCredentialsTokenAsync("acme", "ops", _secret, "manage");
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: token)).StatusCode);

        using var client = _factory.CreateApi();
        var revoked = await client.PostAsync("/t/acme/connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = token,
            ["client_id"] = "ops",
            ["client_secret"] = _secret,
        }));

        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: token)).StatusCode);
    }

    [Fact]
    public async Task AnotherClient_CannotRevokeAToken_ItWasNotIssued_ItsOwnClientCan()
    {
        // A user's access token names no audience, so OpenIddict's own check of the revoking party does not apply.
        await _factory.CreateWebClientAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", "correct horse battery staple");
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var token = (await flow.SignInAsync("ada@acme.test", "correct horse battery staple")).GetProperty("access_token").GetString()!;

        var byOther = await RevokeAsync(token, "ops", _secret);
        var stillValid = await flow.UserInfoStatusAsync(token);
        var byOwner = await RevokeAsync(token, "web", null);

        // Answered as a token that cannot be revoked (RFC 7009: 200, nothing said), and the token still works.
        Assert.Equal(HttpStatusCode.OK, byOther.StatusCode);
        Assert.Equal(HttpStatusCode.OK, stillValid);
        Assert.Equal(HttpStatusCode.OK, byOwner.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(token));
    }

    private async Task<HttpResponseMessage> RevokeAsync(string token, string clientId, string? secret)
    {
        using var client = _factory.CreateApi();
        var form = new Dictionary<string, string> { ["token"] = token, ["client_id"] = clientId };
        if (secret is not null)
        {
            form["client_secret"] = secret;
        }

        return await client.PostAsync("/t/acme/connect/revoke", new FormUrlEncodedContent(form));
    }

    [Fact]
    public async Task DeletedClientsRowlessTokens_StopWorking()
    {
        var token = await _factory.ClientCredentialsTokenAsync("acme", "ops", _secret, "manage");

        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme/clients/ops")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: token)).StatusCode);
    }

    [Fact]
    public async Task AClientMadeAgainUnderTheSameId_DoesNotBringBackTheOldOnesTokens()
    {
        var old = await _factory.ClientCredentialsTokenAsync("acme", "ops", _secret, "manage");
        var forOrders = await _factory.ClientCredentialsTokenAsync("acme", "ops", _secret, "");
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme/clients/ops")).StatusCode);

        // Its secret leaked: deleted, and made again a second later under the same id with a new secret.
        _factory.Time.Advance(TimeSpan.FromSeconds(1));
        var again = await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients",
            new { clientId = "ops", generateSecret = true, grantTypes = new[] { "client_credentials" }, scopes = new[] { "manage" } });
        var fresh = await _factory.ClientCredentialsTokenAsync("acme", "ops", again["clientSecret"]!.GetValue<string>(), "manage");

        Assert.Equal(HttpStatusCode.Unauthorized, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: old)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: fresh)).StatusCode);
        using var client = _factory.CreateApi();
        var introspected = await client.PostAsync("/t/acme/connect/introspect", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = forOrders,
            ["client_id"] = "ops",
            ["client_secret"] = again["clientSecret"]!.GetValue<string>(),
        }));
        Assert.False(System.Text.Json.JsonDocument.Parse(await introspected.Content.ReadAsStringAsync()).RootElement.GetProperty("active").GetBoolean());
    }

    private async Task<int> TokenRowsAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        return await db.Tokens.CountAsync();
    }
}
