using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// Clients that authenticate with assertions they sign with their own private key (<c>private_key_jwt</c>, RFC 7523)
/// instead of a secret: the service keeps only their public keys.
/// </summary>
public sealed class PrivateKeyJwtTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Clients = "/api/v1/tenants/acme/clients";
    private const string Issuer = "http://localhost/t/acme";
    private const string TokenEndpoint = "http://localhost/t/acme/connect/token";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync(Tenant);
        await _factory.ManageOkAsync(HttpMethod.Post, Clients, new { clientId = "backend", grantTypes = new[] { "client_credentials" }, jwks = Jwks(Public(_key, "k1")) });
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        _factory.Dispose();
        _key.Dispose();
    }

    [Fact]
    public async Task AClientWithKeys_GetsATokenWithAnAssertion_AndHasNoSecret()
    {
        var response = await TokenAsync(Assertion(_key, "k1", Issuer));
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var token = new JsonWebToken(JsonNode.Parse(body)!["access_token"]!.GetValue<string>());
        Assert.Equal("backend", token.GetClaim("client_id").Value);
        var client = await _factory.ManageOkAsync(HttpMethod.Get, $"{Clients}/backend", expected: HttpStatusCode.OK);
        Assert.Equal("confidential", client["clientType"]!.GetValue<string>());
        Assert.Equal("k1", client["jwks"]!["keys"]![0]!["kid"]!.GetValue<string>());
        Assert.Null(client["jwks"]!["keys"]![0]!["d"]);
        // No secret to guess: an empty or any secret is refused.
        using var api = _factory.CreateApi();
        var withSecret = await api.PostAsync($"/t/{Tenant}/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = "backend", ["client_secret"] = "a-secret-of-twenty-chars",
        }));
        Assert.Equal(HttpStatusCode.Unauthorized, withSecret.StatusCode);
    }

    [Fact]
    public async Task AnRsaKey_SignsToo()
    {
        using var rsa = RSA.Create(2048);
        var p = rsa.ExportParameters(false);
        await _factory.ManageOkAsync(HttpMethod.Patch, $"{Clients}/backend", new
        {
            jwks = Jwks(Public(_key, "k1"), new { kty = "RSA", kid = "r1", n = Base64UrlEncoder.Encode(p.Modulus), e = Base64UrlEncoder.Encode(p.Exponent) }),
        }, HttpStatusCode.OK);

        foreach (var algorithm in new[] { SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSsaPssSha256 })
        {
            var credentials = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = "r1" }, algorithm);
            var response = await TokenAsync(Assertion(credentials, Issuer));
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task AnAssertion_IsUsedOnce()
    {
        var assertion = Assertion(_key, "k1", Issuer);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(assertion)).StatusCode);

        var again = await TokenAsync(assertion);

        Assert.Equal(HttpStatusCode.Unauthorized, again.StatusCode);
        Assert.Contains("already used", await again.Content.ReadAsStringAsync());
        // Still refused past its exp, while the clock skew the server allows would take it, and then as expired.
        foreach (var minutes in new[] { 2, 4, 3 })
        {
            _factory.Time.Advance(TimeSpan.FromMinutes(minutes));
            Assert.Equal(HttpStatusCode.Unauthorized, (await TokenAsync(assertion)).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(Assertion(_key, "k1", Issuer))).StatusCode);
    }

    [Fact]
    public async Task AnAssertion_CarriesAJti_AndLivesAtMostFifteenMinutes()
    {
        var noJti = await TokenAsync(Assertion(_key, "k1", Issuer, jti: ""));
        var long_ = await TokenAsync(Assertion(_key, "k1", Issuer, lifetime: TimeSpan.FromMinutes(16)));
        var fifteen = await TokenAsync(Assertion(_key, "k1", Issuer, lifetime: TimeSpan.FromMinutes(15)));

        Assert.Equal(HttpStatusCode.Unauthorized, noJti.StatusCode);
        Assert.Contains("jti", await noJti.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, long_.StatusCode);
        Assert.Contains("15 minutes", await long_.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, fifteen.StatusCode);
    }

    [Fact]
    public async Task AnAssertionNotMadeForThisServer_ThisClient_OrThisKey_IsRefused()
    {
        await _factory.CreateTenantAsync("other");
        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var refused = new Dictionary<string, string>
        {
            // The update to RFC 7523: the audience is the issuer alone (the token endpoint's URL lets one server replay
            // another's), and the type says what the token is for.
            ["token endpoint as audience"] = Assertion(_key, "k1", TokenEndpoint),
            ["another tenant's issuer"] = Assertion(_key, "k1", "http://localhost/t/other"),
            ["untyped"] = Assertion(_key, "k1", Issuer, type: "JWT"),
            ["another key"] = Assertion(stranger, "k1", Issuer),
            ["another client"] = Assertion(_key, "k1", Issuer, clientId: "someone-else"),
            ["expired, past the clock skew"] = Assertion(_key, "k1", Issuer, lifetime: TimeSpan.FromMinutes(-6)),
            ["not a JWT"] = "not.a-jwt",
        };

        foreach (var (why, assertion) in refused)
        {
            var response = await TokenAsync(assertion);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{why}: {(int)response.StatusCode} {body}");
            Assert.Equal("invalid_client", JsonNode.Parse(body)!["error"]!.GetValue<string>());
        }

        // What a client developer reads when the audience is the token endpoint's URL.
        var endpoint = await (await TokenAsync(Assertion(_key, "k1", TokenEndpoint))).Content.ReadAsStringAsync();
        Assert.Contains($"must be this server's issuer alone: {Issuer}", endpoint);
    }

    [Fact]
    public async Task Keys_AreRotatedByReplacingTheSet()
    {
        using var next = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(Assertion(_key, "k1", Issuer))).StatusCode);

        await _factory.ManageOkAsync(HttpMethod.Patch, $"{Clients}/backend", new { jwks = Jwks(Public(next, "k2")) }, HttpStatusCode.OK);

        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenAsync(Assertion(_key, "k1", Issuer))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await TokenAsync(Assertion(next, "k2", Issuer))).StatusCode);
        var audit = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=client.updated", expected: HttpStatusCode.OK);
        Assert.Contains("jwks", audit["items"]![0]!["details"]!.ToJsonString());
    }

    [Fact]
    public async Task AWebAppWithKeys_RedeemsItsCodeWithAnAssertion()
    {
        await _factory.ManageOkAsync(HttpMethod.Post, Clients, new
        {
            clientId = "web", firstParty = true, redirectUris = new[] { OidcFlow.RedirectUri }, scopes = new[] { "openid", "email" }, jwks = Jwks(Public(_key, "k1")),
        });
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", "correct horse battery staple");
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, Tenant, "web") { Scope = "openid email" };
        var code = await flow.GetCodeAsync("ada@acme.test", "correct horse battery staple");
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = OidcFlow.RedirectUri, ["code_verifier"] = flow.Verifier,
            ["client_assertion_type"] = ClientAssertion.Type, ["client_assertion"] = Assertion(_key, "k1", Issuer, clientId: "web"),
        };

        var response = await browser.PostAsync($"/t/{Tenant}/connect/token", new FormUrlEncodedContent(form));

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        Assert.Equal("web", new JsonWebToken(JsonNode.Parse(body)!["id_token"]!.GetValue<string>()).Audiences.Single());
    }

    [Theory]
    [InlineData("private")]
    [InlineData("weak-rsa")]
    [InlineData("symmetric")]
    [InlineData("empty")]
    [InlineData("same-kid")]
    [InlineData("encryption")]
    [InlineData("not-a-set")]
    [InlineData("number-kid")]
    [InlineData("rsa-exponent-1")]
    [InlineData("rsa-even-exponent")]
    [InlineData("off-the-curve")]
    public async Task KeySetsThatCannotAuthenticateAClient_Are400(string kind)
    {
        using var rsa = RSA.Create(1024);
        using var strong = RSA.Create(2048);
        var modulus = Base64UrlEncoder.Encode(strong.ExportParameters(false).Modulus);
        var p = _key.ExportParameters(true);
        object jwks = kind switch
        {
            "private" => Jwks(new { kty = "EC", crv = "P-256", x = Base64UrlEncoder.Encode(p.Q.X), y = Base64UrlEncoder.Encode(p.Q.Y), d = Base64UrlEncoder.Encode(p.D) }),
            "weak-rsa" => Jwks(new { kty = "RSA", n = Base64UrlEncoder.Encode(rsa.ExportParameters(false).Modulus), e = "AQAB" }),
            "symmetric" => Jwks(new { kty = "oct", k = "c2VjcmV0" }),
            "empty" => Jwks(),
            "same-kid" => Jwks(Public(_key, "k1"), Public(_key, "k1")),
            "encryption" => Jwks(new { kty = "EC", crv = "P-256", use = "enc", x = Base64UrlEncoder.Encode(p.Q.X), y = Base64UrlEncoder.Encode(p.Q.Y) }),
            "not-a-set" => new[] { Public(_key, "k1") },
            // With e = 1 a signature is its own message: anyone could sign as the client.
            "rsa-exponent-1" => Jwks(new { kty = "RSA", n = modulus, e = "AQ" }),
            "rsa-even-exponent" => Jwks(new { kty = "RSA", n = modulus, e = "AQAA" }),
            "off-the-curve" => Jwks(new { kty = "EC", crv = "P-256", x = Base64UrlEncoder.Encode(p.Q.X), y = Base64UrlEncoder.Encode(p.Q.X) }),
            _ => Jwks(new { kty = "EC", crv = "P-256", kid = 7, x = Base64UrlEncoder.Encode(p.Q.X), y = Base64UrlEncoder.Encode(p.Q.Y) }),
        };

        var response = await _factory.ManageAsync(HttpMethod.Post, Clients, new { clientId = "svc", grantTypes = new[] { "client_credentials" }, jwks });

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, text);
        Assert.NotNull(JsonNode.Parse(text)!["errors"]!["jwks"]);
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Get, $"{Clients}/svc")).StatusCode);
    }

    [Fact]
    public async Task APublicClient_TakesNoKeys()
    {
        await _factory.ManageOkAsync(HttpMethod.Post, Clients, new { clientId = "spa", redirectUris = new[] { OidcFlow.RedirectUri } });

        var response = await _factory.ManageAsync(HttpMethod.Patch, $"{Clients}/spa", new { jwks = Jwks(Public(_key, "k1")) });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("public client", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Discovery_NamesTheMethodAndItsAlgorithms()
    {
        using var client = _factory.CreateApi();
        var document = JsonNode.Parse(await client.GetStringAsync($"/t/{Tenant}/.well-known/openid-configuration"))!;

        Assert.Contains("private_key_jwt", document["token_endpoint_auth_methods_supported"]!.AsArray().Select(m => m!.GetValue<string>()));
        var algorithms = document["token_endpoint_auth_signing_alg_values_supported"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
        Assert.Contains("ES256", algorithms);
        Assert.Contains("PS256", algorithms);
        Assert.DoesNotContain("none", algorithms);
        Assert.DoesNotContain("HS256", algorithms);
    }

    private async Task<HttpResponseMessage> TokenAsync(string assertion, Dictionary<string, string>? extra = null)
    {
        using var client = _factory.CreateApi();
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_assertion_type"] = ClientAssertion.Type, ["client_assertion"] = assertion };
        foreach (var (name, value) in extra ?? [])
        {
            form[name] = value;
        }

        return await client.PostAsync($"/t/{Tenant}/connect/token", new FormUrlEncodedContent(form));
    }

    private string Assertion(ECDsa key, string kid, string audience, string clientId = "backend", string? jti = null, TimeSpan? lifetime = null, string? type = "client-authentication+jwt") =>
        Assertion(ClientAssertion.Es256(key, kid), audience, clientId, jti, lifetime, type);

    private string Assertion(SigningCredentials credentials, string audience, string clientId = "backend", string? jti = null, TimeSpan? lifetime = null, string? type = "client-authentication+jwt") =>
        ClientAssertion.Create(credentials, clientId, audience, _factory.Time.GetUtcNow().UtcDateTime, lifetime ?? TimeSpan.FromMinutes(1), jti, type);

    private static object Public(ECDsa key, string kid) => ClientAssertion.PublicJwk(key, kid);

    private static object Jwks(params object[] keys) => new { keys };
}
