using System.Net;
using System.Text.Json;
using IdentityService.Oidc;
using IdentityService.Tenancy;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Server;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// A tenant's discovery document and JWKS are rendered by OpenIddict once per origin and then served from memory:
/// the same bytes and headers, a published key shows at once, one origin's or tenant's document never reaches another.
/// A request with a query string is never served from memory, so it shows what OpenIddict renders now.
/// </summary>
public sealed class DiscoveryCacheTests(ITestOutputHelper output)
{
    private const string Configuration = "openid-configuration";
    private const string Jwks = "jwks";

    [Theory]
    [InlineData(Configuration)]
    [InlineData(Jwks)]
    public async Task ASecondGet_GetsTheFirstOnesBytesAndHeaders_WithoutOpenIddictRenderingItAgain(string document)
    {
        var renders = new Renders();
        using var factory = new IdentityServiceFactory { Output = output, ConfigureServices = renders.Register };
        await factory.CreateTenantAsync("acme");
        using var client = factory.CreateApi();
        var path = $"/t/acme/.well-known/{document}";

        var rendered = await client.GetAsync(path);
        var kept = await client.GetAsync(path);
        var renderedAgain = await client.GetAsync(path + "?again=1");

        Assert.Equal(HttpStatusCode.OK, rendered.StatusCode);
        var bytes = await rendered.Content.ReadAsByteArrayAsync();
        Assert.Equal(bytes, await kept.Content.ReadAsByteArrayAsync());
        Assert.Equal(bytes, await renderedAgain.Content.ReadAsByteArrayAsync());
        Assert.Equal(Describe(rendered), Describe(kept));
        Assert.Equal(Describe(rendered), Describe(renderedAgain));
        Assert.Equal("application/json; charset=UTF-8", kept.Content.Headers.ContentType?.ToString());
        Assert.Equal("public, max-age=3600", kept.Headers.CacheControl?.ToString());
        // OpenIddict rendered the plain GET once and the one with a query string: the second plain GET came from memory.
        Assert.Equal(2, renders.Of(document));
    }

    [Fact]
    public async Task AKeyPublishedByRotation_ShowsInTheJwks_AsOpenIddictRendersIt()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        using var client = factory.CreateApi();
        var before = await KeyIdsAsync(client, "/t/acme/.well-known/jwks");
        Assert.Equal(before, await KeyIdsAsync(client, "/t/acme/.well-known/jwks"));

        // Day 90: the successors are published (48 hours before they sign).
        factory.Time.Advance(TimeSpan.FromDays(90) + TimeSpan.FromMinutes(1));
        var published = await client.GetByteArrayAsync("/t/acme/.well-known/jwks");
        var publishedAgain = await client.GetByteArrayAsync("/t/acme/.well-known/jwks");

        var after = KeyIds(published);
        Assert.Equal(4, after.Count);
        Assert.Superset(before, after);
        Assert.Equal(published, publishedAgain);
        Assert.Equal(published, await client.GetByteArrayAsync("/t/acme/.well-known/jwks?again=1"));
    }

    [Fact]
    public async Task TenantsOfTheSameSettings_ShareOneCopyOfTheDocument_AndEachIsServedItsOwnIssuerByteForByte()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        var tenants = new[] { "acme", "globex", "initech-eu" };
        using var client = factory.CreateApi();
        var kept = new List<DiscoveryDocuments.Document>();
        foreach (var tenant in tenants)
        {
            await factory.CreateTenantAsync(tenant);
            var path = $"/t/{tenant}/.well-known/openid-configuration";
            var rendered = await client.GetByteArrayAsync(path);
            var fromMemory = await client.GetAsync(path);

            Assert.Equal(rendered, await fromMemory.Content.ReadAsByteArrayAsync());
            Assert.Equal(rendered.Length, fromMemory.Content.Headers.ContentLength);
            Assert.Equal(rendered, await client.GetByteArrayAsync(path + "?again=1"));
            Assert.EndsWith($"/t/{tenant}", JsonDocument.Parse(rendered).RootElement.GetProperty("issuer").GetString());

            var found = await factory.Services.GetRequiredService<TenantDirectory>().FindAsync(tenant, CancellationToken.None);
            var state = await factory.Services.GetRequiredService<TenantOidcStateCache>().GetAsync(found!, CancellationToken.None);
            kept.Add(Assert.Single(state.Documents.Kept));
        }

        // The issuer is cut out wherever it is named (itself and each endpoint); what is left is one copy for all three.
        Assert.True(kept[0].Segments.Length > 5, $"{kept[0].Segments.Length} segments");
        Assert.All(kept, document => Assert.Same(kept[0].Segments, document.Segments));
        Assert.All(kept, document => Assert.Same(kept[0].Path, document.Path));
        Assert.All(kept, document => Assert.Same(kept[0].Scheme, document.Scheme));
        Assert.Equal(3, kept.Select(d => System.Text.Encoding.UTF8.GetString(d.Issuer)).Distinct().Count());
    }

    [Fact]
    public async Task EachOrigin_GetsTheDocumentNamingItsOwnIssuer_EvenWithMoreOriginsThanAreKept()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        var origins = new[] { "http://localhost", "https://localhost", "http://localhost:8080", "https://id.example.test" }
            .Concat(Enumerable.Range(0, 8).Select(i => $"https://id{i}.example.test")).ToArray();
        var clients = origins.Select(o => factory.CreateClient(new() { BaseAddress = new Uri(o), AllowAutoRedirect = false })).ToArray();
        try
        {
            for (var round = 0; round < 2; round++)
            {
                for (var i = 0; i < origins.Length; i++)
                {
                    var document = JsonDocument.Parse(await clients[i].GetStringAsync("/t/acme/.well-known/openid-configuration")).RootElement;

                    Assert.Equal($"{origins[i]}/t/acme", document.GetProperty("issuer").GetString());
                    Assert.Equal($"{origins[i]}/t/acme/.well-known/jwks", document.GetProperty("jwks_uri").GetString());
                }
            }
        }
        finally
        {
            Array.ForEach(clients, c => c.Dispose());
        }
    }

    [Fact]
    public async Task WithAPublicOrigin_EveryHostGetsThePublicIssuer_AndPlainHttpIsStillRefused()
    {
        var renders = new Renders();
        using var factory = new IdentityServiceFactory
        {
            Output = output, Environment = "Production", Settings = { ["Issuer:PublicOrigin"] = "https://id.example.test" }, ConfigureServices = renders.Register,
        };
        using var first = factory.CreateClient(new() { BaseAddress = new Uri("https://id.example.test"), AllowAutoRedirect = false });
        using var other = factory.CreateClient(new() { BaseAddress = new Uri("https://attacker-chosen-host"), AllowAutoRedirect = false });
        using var plain = factory.CreateClient(new() { BaseAddress = new Uri("http://id.example.test"), AllowAutoRedirect = false });
        var refusedBefore = await plain.GetAsync("/t/system/.well-known/openid-configuration");

        var fromFirst = await first.GetStringAsync("/t/system/.well-known/openid-configuration");
        var fromOther = await other.GetStringAsync("/t/system/.well-known/openid-configuration");
        var refusedAfter = await plain.GetAsync("/t/system/.well-known/openid-configuration");

        Assert.Contains("\"issuer\": \"https://id.example.test/t/system\"", fromFirst);
        Assert.Equal(fromFirst, fromOther);
        Assert.NotEqual(HttpStatusCode.OK, refusedBefore.StatusCode);
        Assert.Equal(refusedBefore.StatusCode, refusedAfter.StatusCode);
        Assert.Equal(await refusedBefore.Content.ReadAsStringAsync(), await refusedAfter.Content.ReadAsStringAsync());
        // The refused requests were rendered each time; the second https host got the first one's document from memory.
        Assert.Equal(3, renders.Of(Configuration));
    }

    [Fact]
    public async Task ATenantsDocuments_AreNeverServedForAnother_AndASuspendedOrDeletedTenantIs404()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        await factory.CreateTenantAsync("bravo");
        using var client = factory.CreateApi();
        for (var round = 0; round < 2; round++)
        {
            foreach (var tenant in new[] { "acme", "bravo" })
            {
                var document = JsonDocument.Parse(await client.GetStringAsync($"/t/{tenant}/.well-known/openid-configuration")).RootElement;
                Assert.Equal($"http://localhost/t/{tenant}", document.GetProperty("issuer").GetString());
            }
        }

        var acmeKeys = await KeyIdsAsync(client, "/t/acme/.well-known/jwks");
        var bravoKeys = await KeyIdsAsync(client, "/t/bravo/.well-known/jwks");
        Assert.Equal(acmeKeys, await KeyIdsAsync(client, "/t/acme/.well-known/jwks"));
        Assert.Equal(bravoKeys, await KeyIdsAsync(client, "/t/bravo/.well-known/jwks"));
        Assert.Empty(acmeKeys.Intersect(bravoKeys));

        var suspend = await factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { suspended = true });
        Assert.Equal(HttpStatusCode.OK, suspend.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/t/acme/.well-known/openid-configuration")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/t/acme/.well-known/jwks")).StatusCode);

        var delete = await factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/bravo");
        Assert.True(delete.IsSuccessStatusCode, await delete.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/t/bravo/.well-known/openid-configuration")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/t/bravo/.well-known/jwks")).StatusCode);
    }

    [Theory]
    [InlineData(Configuration)]
    [InlineData(Jwks)]
    public async Task CorsHeaders_AreTheSameFromMemory_AsFromThePipeline(string document)
    {
        var renders = new Renders();
        using var factory = new IdentityServiceFactory { Output = output, ConfigureServices = renders.Register };
        await factory.CreateTenantAsync("acme");
        await factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "spa",
            redirectUris = new[] { "https://spa.example/cb" },
            grantTypes = new[] { "authorization_code", "refresh_token" },
            scopes = new[] { "openid", "offline_access" },
            allowedOrigins = new[] { "https://spa.example" },
        });
        using var client = factory.CreateApi();
        var path = $"/t/acme/.well-known/{document}";

        var allowedRendered = await GetAsync(client, path, "https://spa.example");
        var allowedKept = await GetAsync(client, path, "https://spa.example");
        var allowedRenderedAgain = await GetAsync(client, path + "?again=1", "https://spa.example");
        var refusedKept = await GetAsync(client, path, "https://evil.example");
        var refusedRendered = await GetAsync(client, path + "?again=1", "https://evil.example");
        var rendersOfGets = renders.Of(document);
        var preflight = await PreflightAsync(client, path, "https://spa.example");
        var refusedPreflight = await PreflightAsync(client, path, "https://evil.example");

        Assert.Equal("https://spa.example", allowedKept.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal(Describe(allowedRendered), Describe(allowedKept));
        Assert.Equal(Describe(allowedRenderedAgain), Describe(allowedKept));
        Assert.False(refusedKept.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.Equal(Describe(refusedRendered), Describe(refusedKept));
        Assert.Equal("https://spa.example", preflight.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("GET", preflight.Headers.GetValues("Access-Control-Allow-Methods").Single());
        Assert.False(refusedPreflight.Headers.Contains("Access-Control-Allow-Origin"));
        // Rendered for the first plain GET and for the two with a query string; the others came from memory.
        Assert.Equal(3, rendersOfGets);
    }

    [Fact]
    public async Task OtherMethodsAndConditionalRequests_AnswerAsBeforeTheDocumentWasKept()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        using var client = factory.CreateApi();
        const string path = "/t/acme/.well-known/openid-configuration";
        var before = await OtherRequestsAsync(client, path);

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(path)).StatusCode);
        var after = await OtherRequestsAsync(client, path);

        Assert.Equal(before, after);
    }

    [Fact]
    public async Task DocumentsFromMemory_StillCountAgainstTheTenantsRateLimit()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        await factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { requestsPerTenantPerSecond = 3 } }, HttpStatusCode.OK);
        factory.Time.Advance(TimeSpan.FromMilliseconds(1000 - factory.Time.GetUtcNow().Millisecond));
        using var client = factory.CreateApi();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            statuses.Add((await client.GetAsync("/t/acme/.well-known/jwks")).StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
    }

    private static async Task<List<string>> OtherRequestsAsync(HttpClient client, string path)
    {
        var answers = new List<string>();
        foreach (var method in new[] { HttpMethod.Head, HttpMethod.Post, HttpMethod.Put, HttpMethod.Delete })
        {
            using var request = new HttpRequestMessage(method, path);
            answers.Add($"{method} {await DescribeWithBodyAsync(await client.SendAsync(request))}");
        }

        foreach (var (header, value) in new[] { ("If-None-Match", "\"x\""), ("If-Modified-Since", "Mon, 23 Nov 2026 09:00:00 GMT"), ("Range", "bytes=0-9") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.TryAddWithoutValidation(header, value);
            answers.Add($"GET {header} {await DescribeWithBodyAsync(await client.SendAsync(request))}");
        }

        return answers;
    }

    private static async Task<string> DescribeWithBodyAsync(HttpResponseMessage response) =>
        Describe(response) + "\n" + await response.Content.ReadAsStringAsync();

    private static async Task<HttpResponseMessage> GetAsync(HttpClient client, string path, string origin)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Origin", origin);
        return await client.SendAsync(request);
    }

    private static async Task<HttpResponseMessage> PreflightAsync(HttpClient client, string path, string origin)
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "GET");
        return await client.SendAsync(request);
    }

    /// <summary>Status and every header, one a line, sorted.</summary>
    private static string Describe(HttpResponseMessage response) =>
        $"{(int)response.StatusCode}\n" + string.Join("\n", response.Headers.Concat(response.Content.Headers)
            .Select(h => $"{h.Key}: {string.Join(", ", h.Value)}").Order(StringComparer.Ordinal));

    private static async Task<HashSet<string>> KeyIdsAsync(HttpClient client, string path) => KeyIds(await client.GetByteArrayAsync(path));

    private static HashSet<string> KeyIds(byte[] jwks) =>
        JsonDocument.Parse(jwks).RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).ToHashSet();

    /// <summary>Counts the discovery documents and key sets OpenIddict renders.</summary>
    private sealed class Renders
    {
        private int _configuration;
        private int _jwks;

        public int Of(string document) => document == Configuration ? Volatile.Read(ref _configuration) : Volatile.Read(ref _jwks);

        public void Register(IServiceCollection services) => services.AddOpenIddict().AddServer(options =>
        {
            options.AddEventHandler<OpenIddictServerEvents.ApplyConfigurationResponseContext>(handler => handler.UseInlineHandler(_ =>
            {
                Interlocked.Increment(ref _configuration);
                return ValueTask.CompletedTask;
            }));
            options.AddEventHandler<OpenIddictServerEvents.ApplyJsonWebKeySetResponseContext>(handler => handler.UseInlineHandler(_ =>
            {
                Interlocked.Increment(ref _jwks);
                return ValueTask.CompletedTask;
            }));
        });
    }
}
