using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace LoadGen;

/// <summary>Creates tenants, clients and users through the service's management API (/api/v1).</summary>
internal sealed class Seed(Target ours, string adminId, string adminSecret)
{
    private string? _token;

    public static readonly object Lifetimes = new
    {
        accessTokenLifetimeSeconds = 86_400,
        identityTokenLifetimeSeconds = 86_400,
        refreshTokenLifetimeSeconds = 365 * 86_400,
        authorizationCodeLifetimeSeconds = 600,
        sessionLifetimeSeconds = 30 * 86_400,
    };

    public async Task LoginAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/t/system/connect/token")
        {
            Content = new FormUrlEncodedContent([new("grant_type", "client_credentials"), new("scope", "manage")]),
        };
        request.Headers.Authorization = Flows.Basic(adminId, adminSecret);
        using var response = await ours.Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"The admin token was refused: {(int)response.StatusCode} {body}");
        }

        _token = JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString();
    }

    private Task PostAsync(string path, object body) => SendAsync(HttpMethod.Post, path, body);

    private async Task SendAsync(HttpMethod method, string path, object body)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, path) { Content = JsonContent.Create(body) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            using var response = await ours.Http.SendAsync(request);
            if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.Conflict)
            {
                return;
            }

            var text = await response.Content.ReadAsStringAsync();
            if (attempt >= 3 || (int)response.StatusCode < 500)
            {
                throw new InvalidOperationException($"{method} {path}: {(int)response.StatusCode} {Flows.Cut(text)}");
            }

            await Task.Delay(200 * (attempt + 1));
        }
    }

    /// <summary>A tenant with long lifetimes, its client_credentials client "cc" and, when asked, its web client and users.</summary>
    public async Task TenantAsync(string id, string algorithm, int users)
    {
        await PostAsync("/api/v1/tenants", new { id, displayName = "Bench " + id, settings = new Dictionary<string, object>
        {
            ["accessTokenAlgorithm"] = algorithm,
            ["accessTokenLifetimeSeconds"] = 86_400,
            ["identityTokenLifetimeSeconds"] = 86_400,
            ["refreshTokenLifetimeSeconds"] = 365 * 86_400,
            ["authorizationCodeLifetimeSeconds"] = 600,
            ["sessionLifetimeSeconds"] = 30 * 86_400,
        } });
        // The tenant's rate limits (CONTRACT.md section 8) are raised so that the benchmark does not throttle itself.
        await SendAsync(HttpMethod.Patch, $"/api/v1/tenants/{id}/policy", new
        {
            rateLimits = new { signInPerIpPerMinute = 100_000, tokenRequestsPerClientPerSecond = 1_000_000, requestsPerTenantPerSecond = 10_000_000 },
        });
        await PostAsync($"/api/v1/tenants/{id}/clients", new
        {
            clientId = "cc", clientSecret = Flows.ClientSecret, grantTypes = new[] { "client_credentials" }, scopes = Array.Empty<string>(),
        });
        if (users == 0)
        {
            return;
        }

        await PostAsync($"/api/v1/tenants/{id}/clients", new
        {
            clientId = "web", redirectUris = new[] { Target.RedirectUri }, grantTypes = new[] { "authorization_code", "refresh_token" },
            scopes = new[] { "openid", "offline_access" }, firstParty = true,
        });
        await Parallel.ForEachAsync(Enumerable.Range(0, users), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
            await PostAsync($"/api/v1/tenants/{id}/users", new { email = $"user{i}@bench.test", password = Flows.Password, emailVerified = true }));
    }
}
