using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// Clients that publish their public keys at a <c>jwks_uri</c> (a real loopback server here) and authenticate with
/// assertions signed with them (<c>private_key_jwt</c>): the service fetches the set when an assertion needs it, and
/// again when the client rotates to a key it has not seen.
/// </summary>
public sealed class PublishedClientKeysTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Clients = "/api/v1/tenants/acme/clients";
    private const string Issuer = "http://localhost/t/acme";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private readonly ECDsa _first = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _second = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private WebApplication _server = null!;
    private string _jwksUri = "";
    private int _fetches;

    /// <summary>What the client's server answers at its jwks_uri.</summary>
    private string _published = "";
    private int _status = 200;
    private bool _chunked;

    public async Task InitializeAsync()
    {
        _server = LoopbackHttp.Create();
        _server.MapGet("/jwks", async (HttpContext context) =>
        {
            Interlocked.Increment(ref _fetches);
            context.Response.StatusCode = _status;
            context.Response.ContentType = "application/jwk-set+json";
            var body = System.Text.Encoding.UTF8.GetBytes(_published);
            if (_chunked)
            {
                // Sent in pieces without a Content-Length: the size is known only by reading.
                await context.Response.StartAsync();
                foreach (var piece in body.Chunk(4096))
                {
                    await context.Response.Body.WriteAsync(piece);
                    await context.Response.Body.FlushAsync();
                }
            }
            else
            {
                context.Response.ContentLength = body.Length;
                await context.Response.Body.WriteAsync(body);
            }
        });
        _jwksUri = await LoopbackHttp.StartAsync(_server) + "/jwks";
        Publish(_first, "k1");
        await _factory.CreateTenantAsync("acme");
        await _factory.ManageOkAsync(HttpMethod.Post, Clients, new { clientId = "backend", grantTypes = new[] { "client_credentials" }, jwksUri = _jwksUri });
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose()
    {
        _factory.Dispose();
        _first.Dispose();
        _second.Dispose();
    }

    [Fact]
    public async Task AClientPublishingItsKeys_GetsTokens_AndTheSetIsFetchedOnceWhileFresh()
    {
        var client = await _factory.ManageOkAsync(HttpMethod.Get, $"{Clients}/backend", expected: HttpStatusCode.OK);
        Assert.Equal("confidential", client["clientType"]!.GetValue<string>());
        Assert.Equal(_jwksUri, client["jwksUri"]!.GetValue<string>());
        Assert.Null(client["jwks"]);

        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
        _factory.Time.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
        Assert.Equal(1, _fetches);

        // Older than 5 minutes: the assertion is checked against the set held, which is fetched again off the request.
        _factory.Time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
        await Eventually.TrueAsync(() => _fetches == 2, "The set is fetched again.");
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
        await Task.Delay(100);
        Assert.Equal(2, _fetches);
    }

    [Fact]
    public async Task ARotatedKey_IsFetchedAtOnce_AndAnUnknownKeyAtMostOnceIn10Seconds()
    {
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
        _factory.Time.Advance(TimeSpan.FromSeconds(11));
        Publish(_second, "k2");

        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_second, "k2"));
        Assert.Equal(2, _fetches);

        // The old key is gone from the set: refused, and asking again at once does not make the service fetch again.
        Assert.Equal(HttpStatusCode.Unauthorized, await TokenStatusAsync(_first, "k1"));
        Assert.Equal(HttpStatusCode.Unauthorized, await TokenStatusAsync(_first, "k1"));
        Assert.Equal(2, _fetches);

        _factory.Time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(HttpStatusCode.Unauthorized, await TokenStatusAsync(_first, "k1"));
        Assert.Equal(3, _fetches);
    }

    [Fact]
    public async Task ASetIsKeptWhileTheClientsServerIsDown_ForADay()
    {
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
        _status = 503;

        _factory.Time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
        await Eventually.TrueAsync(() => _fetches == 2, "The set is fetched again, and the fetch fails.");

        _factory.Time.Advance(TimeSpan.FromHours(24));
        Assert.Equal(HttpStatusCode.Unauthorized, await TokenStatusAsync(_first, "k1"));
        Assert.Equal(3, _fetches);
    }

    [Theory]
    [InlineData("private")]
    [InlineData("not json")]
    [InlineData("empty")]
    public async Task ASetThatBreaksTheRules_IsNotTaken(string published)
    {
        var p = _first.ExportParameters(true);
        _published = published switch
        {
            "private" => JsonSerializer.Serialize(new { keys = new[] { new { kty = "EC", crv = "P-256", kid = "k1", x = B64(p.Q.X!), y = B64(p.Q.Y!), d = B64(p.D!) } } }),
            "not json" => "<html>maintenance</html>",
            _ => """{"keys":[]}""",
        };

        Assert.Equal(HttpStatusCode.Unauthorized, await TokenStatusAsync(_first, "k1"));
        Assert.Equal(1, _fetches);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ASetOver64KiB_IsNotTaken_WithOrWithoutItsLength(bool chunked)
    {
        // A valid set but for its size: the key, then a member padding it past 64 KiB (what a set of a few keys never reaches).
        var key = ClientAssertion.PublicJwk(_first, "k1");
        _published = JsonSerializer.Serialize(new { keys = new[] { key }, padding = new string('x', 64 * 1024) });
        _chunked = chunked;
        Assert.Equal(HttpStatusCode.Unauthorized, await TokenStatusAsync(_first, "k1"));
        Assert.Equal(1, _fetches);

        // The same set without the padding is taken (the size alone was refused).
        _published = JsonSerializer.Serialize(new { keys = new[] { key } });
        _factory.Time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
    }

    [Fact]
    public async Task TheManagementApi_TakesJwksOrJwksUri_NotBoth_AndSwitchesBetweenThem()
    {
        var both = await _factory.ManageAsync(HttpMethod.Post, Clients, new
        {
            clientId = "both", grantTypes = new[] { "client_credentials" }, jwksUri = _jwksUri, jwks = new { keys = new[] { ClientAssertion.PublicJwk(_first, "k1") } },
        });
        Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
        Assert.Contains("jwksUri", (await both.Content.ReadAsStringAsync()));

        foreach (var bad in new[] { "ftp://keys.example/jwks", "keys", "https://keys.example/jwks#k" })
        {
            var refused = await _factory.ManageAsync(HttpMethod.Patch, $"{Clients}/backend", new { jwksUri = bad });
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.NotNull(JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["errors"]!["jwksUri"]);
        }

        await _factory.CreateWebClientAsync("acme", "spa");
        var onPublic = await _factory.ManageAsync(HttpMethod.Patch, $"{Clients}/spa", new { jwksUri = _jwksUri });
        Assert.Equal(HttpStatusCode.BadRequest, onPublic.StatusCode);

        // Keys given inline replace the URI, and the URI replaces them.
        var inline = await _factory.ManageOkAsync(HttpMethod.Patch, $"{Clients}/backend", new { jwks = new { keys = new[] { ClientAssertion.PublicJwk(_second, "k2") } } }, HttpStatusCode.OK);
        Assert.Null(inline["jwksUri"]);
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_second, "k2"));
        Assert.Equal(0, _fetches);
        var published = await _factory.ManageOkAsync(HttpMethod.Patch, $"{Clients}/backend", new { jwksUri = _jwksUri }, HttpStatusCode.OK);
        Assert.Null(published["jwks"]);
        Assert.Equal(HttpStatusCode.OK, await TokenStatusAsync(_first, "k1"));
        Assert.Equal(1, _fetches);
    }

    [Fact]
    public async Task AnotherTenantsSlowJwksUris_DoNotHoldThisTenantsTokenRequests()
    {
        // Another tenant's clients publish at a server that answers in 4 s; anyone may send assertions naming them
        // (their sets are fetched before any signature is checked).
        _server.MapGet("/slow/{n}", async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(4));
            return Results.Text("""{"keys":[]}""", "application/json");
        });
        var slow = _jwksUri[..^"/jwks".Length] + "/slow/";
        await _factory.CreateTenantAsync("other");
        const int Hostile = 40;
        for (var i = 0; i < Hostile; i++)
        {
            await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/other/clients", new { clientId = $"k{i}", grantTypes = new[] { "client_credentials" }, jwksUri = slow + i });
        }

        using var anyKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var api = _factory.CreateApi();
        var flood = Enumerable.Range(0, Hostile).Select(i => api.PostAsync("/t/other/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_assertion_type"] = ClientAssertion.Type,
            ["client_assertion"] = ClientAssertion.Create(ClientAssertion.Es256(anyKey, "x"), $"k{i}", "http://localhost/t/other", _factory.Time.GetUtcNow().UtcDateTime, TimeSpan.FromMinutes(1)),
        }))).ToList();
        await Task.Delay(500);

        // This tenant's client, whose own server answers at once: served before any of the slow answers came.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var status = await TokenStatusAsync(_first, "k1");
        var waited = clock.Elapsed;
        await Task.WhenAll(flood);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(waited < TimeSpan.FromSeconds(3.5), $"The token request waited {waited.TotalMilliseconds:0} ms behind another tenant's jwks_uri.");
    }

    private void Publish(ECDsa key, string kid) => _published = JsonSerializer.Serialize(new { keys = new[] { ClientAssertion.PublicJwk(key, kid) } });

    private async Task<HttpStatusCode> TokenStatusAsync(ECDsa key, string kid)
    {
        using var client = _factory.CreateApi();
        var assertion = ClientAssertion.Create(ClientAssertion.Es256(key, kid), "backend", Issuer, _factory.Time.GetUtcNow().UtcDateTime, TimeSpan.FromMinutes(1));
        using var response = await client.PostAsync("/t/acme/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_assertion_type"] = ClientAssertion.Type, ["client_assertion"] = assertion,
        }));
        return response.StatusCode;
    }

    private static string B64(byte[] bytes) => Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(bytes);
}
