using System.Net;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Tests.Oidc;

public sealed class DiscoveryTests(ITestOutputHelper output) : IDisposable
{
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task Discovery_NamesTheTenantsIssuerAndEndpoints_AndMayBeCached()
    {
        await _factory.CreateTenantAsync("acme");
        using var client = _factory.CreateApi();

        var response = await client.GetAsync("/t/acme/.well-known/openid-configuration");
        var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("http://localhost/t/acme", document.GetProperty("issuer").GetString());
        Assert.Equal("http://localhost/t/acme/connect/token", document.GetProperty("token_endpoint").GetString());
        Assert.Equal("http://localhost/t/acme/.well-known/jwks", document.GetProperty("jwks_uri").GetString());
        Assert.Equal(["S256"], document.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.DoesNotContain("implicit", document.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.DoesNotContain("password", document.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("form_post", document.GetProperty("response_modes_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("public, max-age=3600", response.Headers.CacheControl?.ToString());
        var jwks = await client.GetAsync("/t/acme/.well-known/jwks");
        Assert.Equal("public, max-age=3600", jwks.Headers.CacheControl?.ToString());

        // The ES256 key as a relying party reads it: its curve named, both coordinates 32 bytes, no private part.
        var keys = JsonDocument.Parse(await jwks.Content.ReadAsStringAsync()).RootElement.GetProperty("keys").EnumerateArray().ToList();
        var ec = Assert.Single(keys, k => k.GetProperty("kty").GetString() == "EC");
        Assert.Equal("P-256", ec.GetProperty("crv").GetString());
        Assert.Equal("ES256", ec.GetProperty("alg").GetString());
        Assert.Equal(32, Base64UrlEncoder.DecodeBytes(ec.GetProperty("x").GetString()).Length);
        Assert.Equal(32, Base64UrlEncoder.DecodeBytes(ec.GetProperty("y").GetString()).Length);
        Assert.False(ec.TryGetProperty("d", out _));
        Assert.Single(keys, k => k.GetProperty("kty").GetString() == "RSA");
    }

    [Fact]
    public async Task TokenEndpoint_AnswersCorsOnlyForAnOriginAClientAllows()
    {
        await _factory.CreateTenantAsync("acme");
        await CreateBrowserAppAsync("spa", "https://spa.example");
        using var client = _factory.CreateApi();

        var allowed = await PreflightAsync(client, "https://spa.example");
        var refused = await PreflightAsync(client, "https://evil.example");

        Assert.Equal("https://spa.example", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.False(refused.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Cors_FollowsAClientsAllowedOrigins_AsSoonAsTheyChange()
    {
        await _factory.CreateTenantAsync("acme");
        await CreateBrowserAppAsync("spa", "https://spa.example");
        using var client = _factory.CreateApi();
        Assert.True((await PreflightAsync(client, "https://spa.example")).Headers.Contains("Access-Control-Allow-Origin"));

        // The origin moves to another host: the old one is refused at once, the new one admitted at once.
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/clients/spa", new { allowedOrigins = new[] { "https://app.example" } }, HttpStatusCode.OK);
        var old = await PreflightAsync(client, "https://spa.example");
        var moved = await PreflightAsync(client, "https://app.example");

        Assert.False(old.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.Equal("https://app.example", moved.Headers.GetValues("Access-Control-Allow-Origin").Single());

        // A new client's origin is admitted at once too, and a deleted client's origin refused at once.
        await CreateBrowserAppAsync("admin-spa", "https://admin.example");
        Assert.True((await PreflightAsync(client, "https://admin.example")).Headers.Contains("Access-Control-Allow-Origin"));
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme/clients/spa")).StatusCode);
        Assert.False((await PreflightAsync(client, "https://app.example")).Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task OpenApiDocument_DescribesTheManagementApi()
    {
        using var client = _factory.CreateApi();

        var response = await client.GetAsync("/openapi/v1.json");
        var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(document.GetProperty("paths").TryGetProperty("/api/v1/tenants/{tenant}/users", out _));
        Assert.DoesNotContain(document.GetProperty("paths").EnumerateObject(), p => p.Name.StartsWith("/connect", StringComparison.Ordinal));
        var reference = await client.GetAsync("/api/reference/");

        Assert.Equal(HttpStatusCode.OK, reference.StatusCode);
        Assert.Contains("text/html", reference.Content.Headers.ContentType?.ToString());
    }

    /// <summary>A public browser app of tenant acme whose one allowed origin is <paramref name="origin"/>.</summary>
    private Task CreateBrowserAppAsync(string clientId, string origin) =>
        _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId,
            redirectUris = new[] { origin + "/cb" },
            grantTypes = new[] { "authorization_code", "refresh_token" },
            scopes = new[] { "openid", "offline_access" },
            allowedOrigins = new[] { origin },
        });

    private static async Task<HttpResponseMessage> PreflightAsync(HttpClient client, string origin)
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "/t/acme/connect/token");
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        return await client.SendAsync(request);
    }
}
