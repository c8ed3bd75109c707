using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;
using OpenIddict.Abstractions;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// The token endpoint's responses are written by the service's own handler (a buffer per thread) in place of
/// OpenIddict's: a client must get exactly what OpenIddict would have written, success or error, one after another.
/// </summary>
public sealed class TokenResponseTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _secret = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync(Tenant);
        _secret = await ClientCacheTests.CreateClientAsync(_factory, Tenant, "backend");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ATokenResponse_IsOpenIddictsJson_WithItsHeaders_AndAnErrorAfterItToo()
    {
        // Many responses in turn and at once, so that the threads' buffers are reused, then an error.
        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => ClientCacheTests.TokenAsync(_factory, Tenant, "backend", _secret)));
        foreach (var response in responses)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await AssertOpenIddictsJsonAsync(response);
            using var json = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync());
            Assert.Equal("Bearer", json.RootElement.GetProperty("token_type").GetString());
        }

        Assert.Equal(20, responses.Select(r => r.Content.ReadAsStringAsync().Result).Distinct().Count());

        var refused = await ClientCacheTests.TokenAsync(_factory, Tenant, "backend", "not-the-secret");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        await AssertOpenIddictsJsonAsync(refused);
        using var error = JsonDocument.Parse(await refused.Content.ReadAsByteArrayAsync());
        Assert.Equal("invalid_client", error.RootElement.GetProperty("error").GetString());
    }

    /// <summary>The bytes OpenIddict's own handler writes for the same message (its encoder, indented), and its headers.</summary>
    private static async Task AssertOpenIddictsJsonAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal("application/json; charset=UTF-8", response.Content.Headers.ContentType?.ToString());
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());

        var message = JsonSerializer.Deserialize<OpenIddictResponse>(body)!;
        using var expected = new MemoryStream();
        using (var writer = new Utf8JsonWriter(expected, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true }))
        {
            message.WriteTo(writer);
        }

        Assert.Equal(System.Text.Encoding.UTF8.GetString(expected.ToArray()), System.Text.Encoding.UTF8.GetString(body));
    }
}
