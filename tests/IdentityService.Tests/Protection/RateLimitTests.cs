using System.Net;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Protection;

public sealed class RateLimitTests(ITestOutputHelper output) : IDisposable
{
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TokenRequests_PastTheClientsLimit_Answer429WithRetryAfter_ThenRecover()
    {
        await _factory.CreateTenantAsync("acme");
        var client = await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new { clientId = "backend", generateSecret = true, grantTypes = new[] { "client_credentials" } });
        var secret = client["clientSecret"]!.GetValue<string>();
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { tokenRequestsPerClientPerSecond = 3 } }, HttpStatusCode.OK);
        StartOfASecond();
        using var api = _factory.CreateApi();

        var statuses = new List<HttpResponseMessage>();
        for (var i = 0; i < 4; i++)
        {
            statuses.Add(await api.PostAsync("/t/acme/connect/token", Form(secret)));
        }

        Assert.All(statuses.Take(3), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[3].StatusCode);
        Assert.True(int.Parse(statuses[3].Headers.GetValues("Retry-After").Single()) >= 1);

        _factory.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.OK, (await api.PostAsync("/t/acme/connect/token", Form(secret))).StatusCode);
    }

    [Theory]
    [InlineData("/t/acme/connect/device")]
    [InlineData("/t/acme/connect/par")]
    public async Task DeviceAndPushedAuthorizationRequests_CountAgainstTheClientsLimit_WithItsTokenRequests(string path)
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new { clientId = "backend", generateSecret = true, grantTypes = new[] { "client_credentials" } });
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { tokenRequestsPerClientPerSecond = 2 } }, HttpStatusCode.OK);
        StartOfASecond();
        using var api = _factory.CreateApi();

        // Answered by the endpoint (a wrong secret), then refused by the limit, which the token endpoint shares.
        Assert.NotEqual(HttpStatusCode.TooManyRequests, (await api.PostAsync(path, Form("wrong"))).StatusCode);
        Assert.NotEqual(HttpStatusCode.TooManyRequests, (await api.PostAsync(path, Form("wrong"))).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await api.PostAsync(path, Form("wrong"))).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await api.PostAsync("/t/acme/connect/token", Form("wrong"))).StatusCode);
    }

    [Theory]
    [InlineData("/t/acme/connect/Token")]
    [InlineData("/t/acme/connect/token/")]
    [InlineData("/t/acme/CONNECT/PAR")]
    public async Task AnEndpointNamedInAnotherCase_OrWithATrailingSlash_CountsAsItself(string path)
    {
        // OpenIddict answers its endpoints whatever the case of their path, and with one more slash.
        await _factory.CreateTenantAsync("acme");
        var client = await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new { clientId = "backend", generateSecret = true, grantTypes = new[] { "client_credentials" } });
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { tokenRequestsPerClientPerSecond = 2 } }, HttpStatusCode.OK);
        StartOfASecond();
        using var api = _factory.CreateApi();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            statuses.Add((await api.PostAsync(path, Form(client["clientSecret"]!.GetValue<string>()))).StatusCode);
        }

        Assert.DoesNotContain(HttpStatusCode.NotFound, statuses);
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[2]);
    }

    [Fact]
    public async Task RequestsAuthenticatedByAnAssertionAlone_CountAgainstItsIssuersLimit()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new { clientId = "backend", generateSecret = true, grantTypes = new[] { "client_credentials" } });
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { tokenRequestsPerClientPerSecond = 2 } }, HttpStatusCode.OK);
        StartOfASecond();
        using var api = _factory.CreateApi();
        static string Part(string json) => Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(json);
        var forged = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = $"{Part("""{"alg":"ES256","typ":"client-authentication+jwt"}""")}.{Part("""{"iss":"backend","sub":"backend"}""")}.c2lnbmF0dXJl",
        });

        Assert.Equal(HttpStatusCode.Unauthorized, (await api.PostAsync("/t/acme/connect/token", forged)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.PostAsync("/t/acme/connect/token", forged)).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await api.PostAsync("/t/acme/connect/token", forged)).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await api.PostAsync("/t/acme/connect/token", Form("wrong"))).StatusCode);
    }

    [Fact]
    public async Task ManagementApi_PastTheTenantsLimit_Answers429ProblemWithRetryAfter()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { requestsPerTenantPerSecond = 2 } }, HttpStatusCode.OK);
        StartOfASecond();

        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++)
        {
            answers.Add(await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users"));
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, answers[2].StatusCode);
        Assert.Equal("application/problem+json", answers[2].Content.Headers.ContentType?.MediaType);
        Assert.True(answers[2].Headers.Contains("Retry-After"));
        // The API's routes ignore case: so does the limit.
        Assert.Equal(HttpStatusCode.TooManyRequests, (await _factory.ManageAsync(HttpMethod.Get, "/API/V1/TENANTS/acme/users")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/system")).StatusCode);
    }

    /// <summary>Limits count per second: start each test at the beginning of one, so a window cannot end mid-test.</summary>
    private void StartOfASecond() => _factory.Time.Advance(TimeSpan.FromMilliseconds(1000 - _factory.Time.GetUtcNow().Millisecond));

    private static FormUrlEncodedContent Form(string secret) => new(new Dictionary<string, string>
    {
        ["grant_type"] = "client_credentials",
        ["client_id"] = "backend",
        ["client_secret"] = secret,
    });
}
