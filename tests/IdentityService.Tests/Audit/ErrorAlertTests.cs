using System.Net;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Audit;

/// <summary>
/// A tenant is told when its endpoints answer too many errors: the error that reaches the policy's threshold within
/// a minute writes one alert.errors event, which its webhooks receive.
/// </summary>
public sealed class ErrorAlertTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Events = "/api/v1/tenants/acme/audit-events?type=alert.errors";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private WebhookReceiver _receiver = null!;

    public async Task InitializeAsync()
    {
        _receiver = await WebhookReceiver.StartAsync();
        await _factory.CreateTenantAsync("acme");
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { alerts = new { errorsPerMinute = 3 } }, HttpStatusCode.OK);
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/webhooks", new { url = _receiver.Url + "/alerts", events = new[] { "alert.errors" } });
    }

    public async Task DisposeAsync() => await _receiver.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheThresholdsError_AlertsOncePerMinute_ThroughTheLogAndWebhooks()
    {
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(HttpStatusCode.BadRequest, await BadTokenRequestAsync());
        }

        Assert.Empty(await AlertsAsync());
        await BadTokenRequestAsync();
        await BadTokenRequestAsync();
        await BadTokenRequestAsync();

        await Eventually.TrueAsync(async () => (await AlertsAsync()).Count > 0);
        var alert = Assert.Single(await AlertsAsync())!;
        Assert.Equal("failed", alert["outcome"]!.GetValue<string>());
        Assert.Equal(3, alert["details"]!["errors"]!.GetValue<int>());
        Assert.Equal("/connect/token", alert["details"]!["lastPath"]!.GetValue<string>());
        await Eventually.TrueAsync(() => !_receiver.Deliveries.IsEmpty);
        Assert.Equal("alert.errors", JsonNode.Parse(_receiver.Deliveries.Single().Body)!["type"]!.GetValue<string>());

        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        for (var i = 0; i < 3; i++)
        {
            await BadTokenRequestAsync();
        }

        await Eventually.TrueAsync(async () => (await AlertsAsync()).Count == 2);
    }

    [Fact]
    public async Task OnlyTheListedStatuses_Count()
    {
        using var client = _factory.CreateApi();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/t/acme/no-such-page")).StatusCode);
        }

        Assert.Empty(await AlertsAsync());
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { alerts = new { statuses = new[] { 404 } } }, HttpStatusCode.OK);
        for (var i = 0; i < 3; i++)
        {
            await client.GetAsync("/t/acme/no-such-page");
        }

        await Eventually.TrueAsync(async () => (await AlertsAsync()).Count == 1);
    }

    [Fact]
    public async Task ZeroTurnsAlertsOff()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { alerts = new { errorsPerMinute = 0 } }, HttpStatusCode.OK);
        for (var i = 0; i < 5; i++)
        {
            await BadTokenRequestAsync();
        }

        Assert.Empty(await AlertsAsync());
    }

    [Theory]
    [InlineData("""{"alerts": {"errorsPerMinute": -1}}""", "alerts.errorsPerMinute")]
    [InlineData("""{"alerts": {"statuses": [200]}}""", "alerts.statuses")]
    [InlineData("""{"alerts": {"statuses": []}}""", "alerts.statuses")]
    [InlineData("""{"alerts": {"statuses": [401, 401]}}""", "alerts.statuses")]
    public async Task BadAlertSettings_Are400NamingThem(string patch, string field)
    {
        var response = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", JsonNode.Parse(patch));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]![field]);
    }

    private async Task<HttpStatusCode> BadTokenRequestAsync()
    {
        using var client = _factory.CreateApi();
        var response = await client.PostAsync("/t/acme/connect/token", new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "password" }));
        return response.StatusCode;
    }

    private async Task<JsonArray> AlertsAsync() =>
        (await _factory.ManageOkAsync(HttpMethod.Get, Events, expected: HttpStatusCode.OK))["items"]!.AsArray();
}
