using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Oidc;

public sealed class ClientCredentialsTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string ClientId = "backend";
    private readonly IdentityServiceFactory _factory = new();
    private string _secret = "";

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        await _factory.CreateTenantAsync(Tenant);
        var client = await _factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients", new
        {
            clientId = ClientId,
            generateSecret = true,
            grantTypes = new[] { "client_credentials" },
        });
        _secret = client["clientSecret"]!.GetValue<string>();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task CreateWithGenerateSecret_ShowsTheSecretOnceAndNeverAgain()
    {
        // Arrange: the secret came in the 201 answer of InitializeAsync.
        Assert.False(string.IsNullOrEmpty(_secret));

        // Act
        var response = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/clients/{ClientId}");
        var text = await response.Content.ReadAsStringAsync();

        // Assert
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain(_secret, text);
        Assert.Equal("confidential", JsonNode.Parse(text)!["clientType"]!.GetValue<string>());
    }

    [Fact]
    public async Task ATenantsSigningKey_IsOneOpenSslKey_ThatSignsAndIsPublished_WithoutItsPrivatePartEverExported()
    {
        // A token signed with the tenant's ES256 key, and the tenant's JWKS rendered.
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_secret, basic: true)).StatusCode);
        using var client = _factory.CreateApi();
        var jwks = JsonDocument.Parse(await client.GetStringAsync($"/t/{Tenant}/.well-known/jwks")).RootElement;

        var tenant = await _factory.Services.GetRequiredService<IdentityService.Tenancy.TenantDirectory>().FindAsync(Tenant, CancellationToken.None);
        var state = await _factory.Services.GetRequiredService<IdentityService.Oidc.TenantOidcStateCache>().GetAsync(tenant!, CancellationToken.None);
        var key = Assert.IsType<IdentityService.Oidc.CompactEcdsa>(((Microsoft.IdentityModel.Tokens.ECDsaSecurityKey)state.Keys.Ecdsa.Key).ECDsa);
        Assert.Equal(OperatingSystem.IsLinux(), key.IsProviderKey);
        Assert.Equal(0, key.PrivateExports);
        var published = jwks.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("kid").GetString() == state.Keys.Ecdsa.Key.KeyId);
        Assert.Equal(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(key.ExportParameters(false).Q.X), published.GetProperty("x").GetString());
        Assert.False(published.TryGetProperty("d", out _));
    }

    [Fact]
    public async Task TokenRequest_WithBasicAuth_IssuesABearerAccessToken()
    {
        // Act
        var response = await TokenAsync(_secret, basic: true);
        var body = await response.Content.ReadAsStringAsync();

        // Assert
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = JsonDocument.Parse(body).RootElement;
        Assert.False(string.IsNullOrEmpty(json.GetProperty("access_token").GetString()));
        Assert.Equal("Bearer", json.GetProperty("token_type").GetString());
        Assert.False(json.TryGetProperty("refresh_token", out _), "client_credentials gives no refresh token");
    }

    [Fact]
    public async Task TokenRequest_WithClientSecretPost_IssuesAnAccessToken()
    {
        // Act
        var response = await TokenAsync(_secret, basic: false);

        // Assert
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.TryGetProperty("access_token", out _));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TokenRequest_WithAWrongSecret_IsRefusedAsInvalidClient(bool basic)
    {
        // Act
        var response = await TokenAsync("not-the-secret-at-all-0123456789", basic);
        var body = await response.Content.ReadAsStringAsync();

        // Assert
        Assert.True(response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        Assert.Equal("invalid_client", JsonDocument.Parse(body).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Introspection_SaysActiveForALiveToken_AndInactiveAfterRevocation()
    {
        // Arrange
        var token = await AccessTokenAsync(_secret);

        // Act
        var live = await IntrospectAsync(token);
        var revoke = await PostAsClientAsync("revoke", new() { ["token"] = token, ["token_type_hint"] = "access_token" });
        var revoked = await IntrospectAsync(token);

        // Assert
        Assert.True(live.GetProperty("active").GetBoolean(), live.ToString());
        Assert.Equal(ClientId, live.GetProperty("client_id").GetString());
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.False(revoked.GetProperty("active").GetBoolean(), revoked.ToString());
    }

    [Fact]
    public async Task Introspection_OfAnUnknownToken_SaysInactive()
    {
        // Act
        var result = await IntrospectAsync("this-is-not-a-token");

        // Assert
        Assert.False(result.GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task SecretRotation_KeepsTheOldSecretDuringTheDefaultOverlap_AndEndsItAfter()
    {
        // Act
        var rotated = await _factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients/{ClientId}/secret", expected: HttpStatusCode.OK);
        var newSecret = rotated["clientSecret"]!.GetValue<string>();

        // Assert: both work during the overlap.
        Assert.NotEqual(_secret, newSecret);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_secret, basic: true)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(newSecret, basic: true)).StatusCode);

        _factory.Time.Advance(TimeSpan.FromHours(23));
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_secret, basic: false)).StatusCode);

        _factory.Time.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));
        var old = await TokenAsync(_secret, basic: true);
        Assert.True(old.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.BadRequest, $"old secret after the overlap: {(int)old.StatusCode}");
        Assert.Contains("invalid_client", await old.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(newSecret, basic: true)).StatusCode);
    }

    [Fact]
    public async Task SecretRotation_WithZeroOverlap_EndsTheOldSecretAtOnce()
    {
        // Arrange: the old secret was just verified, so the service remembers it (the verified-secret cache).
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_secret, basic: true)).StatusCode);

        // Act
        var rotated = await _factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients/{ClientId}/secret", new { overlapHours = 0 }, HttpStatusCode.OK);
        var newSecret = rotated["clientSecret"]!.GetValue<string>();

        // Assert
        var old = await TokenAsync(_secret, basic: true);
        Assert.True(old.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.BadRequest, $"old secret: {(int)old.StatusCode}");
        Assert.Contains("invalid_client", await old.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(newSecret, basic: true)).StatusCode);
    }

    [Fact]
    public async Task SecretRotation_WithAnOutOfRangeOverlap_Is400NamingTheField()
    {
        // Act
        var response = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients/{ClientId}/secret", new { overlapHours = -1 });

        // Assert
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("overlapHours", await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(_secret, basic: true)).StatusCode);
    }

    [Fact]
    public async Task EachTenant_SignsWithItsOwnKeyAndAlgorithm_AndItsOwnTokenLifetime()
    {
        await _factory.CreateTenantAsync("globex");
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/globex",
            new { settings = new { accessTokenLifetimeSeconds = 600, accessTokenAlgorithm = "RS256" } }, HttpStatusCode.OK);
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/globex/clients", new
        {
            clientId = ClientId,
            clientSecret = "a-long-enough-client-secret",
            grantTypes = new[] { "client_credentials" },
        });
        using var client = _factory.CreateApi();

        var acme = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(await AccessTokenAsync(_secret));
        var response = await client.PostAsync("/t/globex/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = ClientId,
            ["client_secret"] = "a-long-enough-client-secret",
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        var globex = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!);

        Assert.Equal(("ES256", 3600.0), (acme.Alg, (acme.ValidTo - acme.IssuedAt).TotalSeconds));
        Assert.Equal(("RS256", 600.0), (globex.Alg, (globex.ValidTo - globex.IssuedAt).TotalSeconds));
        var acmeKeys = await Jwks.KeyIdsAsync(client, Tenant);
        var globexKeys = await Jwks.KeyIdsAsync(client, "globex");
        Assert.Contains(acme.Kid, acmeKeys);
        Assert.Contains(globex.Kid, globexKeys);
        Assert.Empty(acmeKeys.Intersect(globexKeys));
    }

    private async Task<HttpResponseMessage> TokenAsync(string secret, bool basic)
    {
        using var client = _factory.CreateApi();
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials" };
        if (!basic)
        {
            form["client_id"] = ClientId;
            form["client_secret"] = secret;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/t/{Tenant}/connect/token") { Content = new FormUrlEncodedContent(form) };
        if (basic)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(ClientId)}:{Uri.EscapeDataString(secret)}")));
        }

        return await client.SendAsync(request);
    }

    private async Task<string> AccessTokenAsync(string secret)
    {
        var response = await TokenAsync(secret, basic: true);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    private async Task<HttpResponseMessage> PostAsClientAsync(string endpoint, Dictionary<string, string> form)
    {
        using var client = _factory.CreateApi();
        form["client_id"] = ClientId;
        form["client_secret"] = _secret;
        return await client.PostAsync($"/t/{Tenant}/connect/{endpoint}", new FormUrlEncodedContent(form));
    }

    private async Task<JsonElement> IntrospectAsync(string token)
    {
        var response = await PostAsClientAsync("introspect", new() { ["token"] = token });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"introspect: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
