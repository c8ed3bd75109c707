using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// The service under test: the real pipeline on a real database (SQLite, or PostgreSQL when
/// <c>TEST_POSTGRES</c> is set), with a fake clock. Only the clock and the database location are replaced.
/// </summary>
public class IdentityServiceFactory : WebApplicationFactory<Program>
{
    private readonly TestDatabase _database;
    private readonly bool _ownsDatabase;
    private string? _adminToken;
    private DateTimeOffset _adminTokenAt;

    public IdentityServiceFactory() : this((string?)null)
    {
    }

    public IdentityServiceFactory(string? provider, bool createDatabase = true)
    {
        _database = TestDatabase.Create(provider, createDatabase);
        _ownsDatabase = true;
    }

    /// <summary>A second replica of <paramref name="first"/>: another instance of the service on the same database, reading the same clock.</summary>
    public IdentityServiceFactory(IdentityServiceFactory first)
    {
        _database = first._database;
        AdminClientSecret = first.AdminClientSecret;
        Time = first.Time;
    }

    public TestDatabase Database => _database;

    /// <summary>The hosting environment; tests of production behaviour set another.</summary>
    public string Environment { get; init; } = "Development";

    /// <summary>
    /// The service's clock. Each reading moves it on by a millisecond, so that events keep their order.
    /// It starts at 09:00 UTC on the day the suite runs: the hour is fixed, so windows line up the same way in
    /// every run, and the date is today's, so what reads the wall clock (a cookie jar dropping expired cookies,
    /// a resource server checking a token) agrees with the service on any day.
    /// </summary>
    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(DateTime.UtcNow.Date.AddHours(9), TimeSpan.Zero)) { AutoAdvanceAmount = TimeSpan.FromMilliseconds(1) };

    public string AdminClientId { get; } = "platform-admin";

    public string? AdminClientSecret { get; init; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(24));

    public string DatabaseProvider => _database.Provider;

    /// <summary>Set by a test to send server logs to its output.</summary>
    public ITestOutputHelper? Output { get; set; }

    /// <summary>Extra services a test registers (a custom sign-in step...), set before the first request.</summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }

    /// <summary>Extra configuration a test class needs (set before the first request).</summary>
    public Dictionary<string, string?> Settings { get; } = [];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(Environment);
        builder.UseSetting("Database:Provider", _database.Provider);
        builder.UseSetting("ConnectionStrings:Identity", _database.ConnectionString);
        builder.UseSetting("Bootstrap:AdminClientId", AdminClientId);
        builder.UseSetting("Bootstrap:AdminClientSecret", AdminClientSecret);
        // The clock is the test's: a pass of the pruner whenever a test moves it on would race with what it reads.
        builder.UseSetting("Database:PruneIntervalMinutes", "0");
        foreach (var (key, value) in Settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging =>
        {
            logging.ClearProviders();
            logging.AddProvider(new XunitLoggerProvider(() => Output));
            logging.SetMinimumLevel(LogLevel.Warning);
        });
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<TimeProvider>(Time);
            services.AddTransient<IStartupFilter, TestClientIp>();
            ConfigureServices?.Invoke(services);
        });
    }

    public HttpClient CreateBrowser() => CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = ClientOptions.BaseAddress, AllowAutoRedirect = false, HandleCookies = true });

    public HttpClient CreateApi() => CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = ClientOptions.BaseAddress, AllowAutoRedirect = false, HandleCookies = false });

    /// <summary>A management token of the platform tenant, from the bootstrap client.</summary>
    public async Task<string> AdminTokenAsync()
    {
        // Taken again once the test's clock has moved past half its lifetime (an hour).
        if (_adminToken is null || Time.GetUtcNow() - _adminTokenAt > TimeSpan.FromMinutes(30))
        {
            _adminTokenAt = Time.GetUtcNow();
            _adminToken = await ClientCredentialsTokenAsync("system", AdminClientId, AdminClientSecret!, "manage");
        }

        return _adminToken;
    }

    public async Task<string> ClientCredentialsTokenAsync(string tenant, string clientId, string secret, string scope, string? resource = null)
    {
        using var client = CreateApi();
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope };
        if (resource is not null)
        {
            form["resource"] = resource;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/t/{tenant}/connect/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(clientId)}:{Uri.EscapeDataString(secret)}")));
        var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    /// <summary>Calls the management API as the platform administrator; the response is asserted by the caller.</summary>
    public async Task<HttpResponseMessage> ManageAsync(HttpMethod method, string path, object? body = null, string? token = null)
    {
        using var client = CreateApi();
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token ?? await AdminTokenAsync());
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await client.SendAsync(request);
    }

    public async Task<JsonObject> ManageOkAsync(HttpMethod method, string path, object? body = null, HttpStatusCode expected = HttpStatusCode.Created)
    {
        var response = await ManageAsync(method, path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{method} {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>
    /// Walks a list route two items a page, following each answer's cursor (ten pages at most): every item's
    /// <paramref name="key"/> in the order given, and the size of each page.
    /// </summary>
    public async Task<(List<string> Seen, List<int> PageSizes)> WalkPagesAsync(string path, string key)
    {
        var seen = new List<string>();
        var sizes = new List<int>();
        string? cursor = null;
        do
        {
            var page = await ManageOkAsync(HttpMethod.Get, $"{path}?limit=2" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)), expected: HttpStatusCode.OK);
            var items = page["items"]!.AsArray();
            seen.AddRange(items.Select(item => item![key]!.GetValue<string>()));
            sizes.Add(items.Count);
            cursor = page["next"]?.GetValue<string>();
        }
        while (cursor is not null && sizes.Count < 10);

        return (seen, sizes);
    }

    /// <summary>A management token of a tenant's own admin: a back end of that tenant with the manage scope (client <c>ops</c>).</summary>
    public async Task<string> TenantAdminTokenAsync(string tenant)
    {
        var client = await ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{tenant}/clients",
            new { clientId = "ops", generateSecret = true, grantTypes = new[] { "client_credentials" }, scopes = new[] { "manage" } });
        return await ClientCredentialsTokenAsync(tenant, "ops", client["clientSecret"]!.GetValue<string>(), "manage");
    }

    public Task<JsonObject> CreateTenantAsync(string id, string? displayName = null) =>
        ManageOkAsync(HttpMethod.Post, "/api/v1/tenants", new { id, displayName = displayName ?? id.ToUpperInvariant() });

    public Task<JsonObject> CreateWebClientAsync(string tenant, string clientId = "web", bool firstParty = true, string? secret = null, string[]? scopes = null) =>
        ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{tenant}/clients", new Dictionary<string, object?>
        {
            ["clientId"] = clientId,
            ["clientSecret"] = secret,
            ["displayName"] = $"{clientId} app",
            ["redirectUris"] = new[] { "https://app.example/cb" },
            ["postLogoutRedirectUris"] = new[] { "https://app.example/" },
            ["grantTypes"] = new[] { "authorization_code", "refresh_token" },
            ["scopes"] = scopes ?? ["openid", "profile", "email", "phone", "offline_access", "roles"],
            ["firstParty"] = firstParty,
        });

    public async Task<string> CreateUserAsync(string tenant, string email, string password, object? extra = null)
    {
        var body = new Dictionary<string, object?> { ["email"] = email, ["password"] = password, ["emailVerified"] = true };
        if (extra is not null)
        {
            foreach (var property in JsonSerializer.SerializeToElement(extra).EnumerateObject())
            {
                body[property.Name] = property.Value;
            }
        }

        var user = await ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{tenant}/users", body);
        return user["id"]!.GetValue<string>();
    }

    /// <summary>Disposing twice is allowed: a test that stops the service (as a deploy does) leaves its class's Dispose to run.</summary>
    protected override void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        base.Dispose(disposing);
        if (disposing && _ownsDatabase)
        {
            _database.Dispose();
        }
    }

    private bool _disposed;
}

/// <summary>
/// The test server has no client address: every request gets one, from the test-only header
/// <see cref="Header"/> or <see cref="Default"/>. Registered by the test factory only.
/// </summary>
public sealed class TestClientIp : IStartupFilter
{
    public const string Header = "X-Test-Client-Ip";

    public static readonly IPAddress Default = IPAddress.Parse("203.0.113.10");

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use((context, nextMiddleware) =>
        {
            context.Connection.RemoteIpAddress = IPAddress.TryParse(context.Request.Headers[Header].ToString(), out var ip) ? ip : Default;
            return nextMiddleware(context);
        });
        next(app);
    };
}
