using System.Net;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// The device authorization grant (RFC 8628): a TV app asks for a code at <c>connect/device</c>, its person allows it
/// on the tenant's device page in a browser where they are signed in, and the app, polling the token endpoint, gets
/// its tokens (or <c>access_denied</c>, or <c>expired_token</c>).
/// </summary>
public sealed class DeviceFlowTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string Token = "/t/acme/connect/token";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _userId = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "tv",
            displayName = "Living room TV",
            grantTypes = new[] { "urn:ietf:params:oauth:grant-type:device_code", "refresh_token" },
            scopes = new[] { "openid", "profile", "offline_access" },
        });
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { name = "Ada Lovelace" });
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ACodeAllowedOnTheDevicePage_GivesTheDeviceTokensOfThePerson_Once()
    {
        using var device = _factory.CreateApi();
        var authorization = await AuthorizeDeviceAsync(device);
        Assert.Equal("http://localhost/t/acme/device", authorization.GetProperty("verification_uri").GetString());
        var userCode = authorization.GetProperty("user_code").GetString()!;
        Assert.Equal($"http://localhost/t/acme/device?user_code={userCode}", authorization.GetProperty("verification_uri_complete").GetString());
        var deviceCode = authorization.GetProperty("device_code").GetString()!;
        Assert.Equal("authorization_pending", await PollErrorAsync(device, deviceCode));

        using var browser = await SignedInBrowserAsync();
        var page = await browser.GetStringAsync($"/t/acme/device?user_code={userCode}");
        Assert.Contains("Allow Living room TV on your device?", page);
        Assert.Contains(userCode, page);
        Assert.Equal("authorization_pending", await PollErrorAsync(device, deviceCode));

        var done = await AnswerAsync(browser, userCode, "allow");
        Assert.Contains("Device connected", done);

        // Back to the page with the code (the browser's Back button): the code is used, and that is all.
        Assert.Contains("That code is not valid, or it has expired.", await browser.GetStringAsync($"/t/acme/device?user_code={userCode}"));

        using var response = await PollAsync(device, deviceCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var tokens = JsonDocument.Parse(body).RootElement;
        var idToken = new JsonWebToken(tokens.GetProperty("id_token").GetString());
        Assert.Equal(_userId, idToken.Subject);
        Assert.Equal("Ada Lovelace", idToken.GetClaim("name").Value);
        Assert.Equal("tv", idToken.Audiences.Single());
        Assert.Equal(_userId, new JsonWebToken(tokens.GetProperty("access_token").GetString()).Subject);

        // The refresh token it gave works; the device code is used once, and used again (a replay, as for a code) it
        // ends the tokens it gave.
        var refreshed = await RefreshAsync(device, tokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        Assert.Equal("invalid_grant", await PollErrorAsync(device, deviceCode));
        var replayed = await RefreshAsync(device, JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync()).RootElement.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.BadRequest, replayed.StatusCode);

        var entry = Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.device_authorized", expected: HttpStatusCode.OK))["items"]!.AsArray())!;
        Assert.Equal($"user:{_userId}@acme", entry["actor"]!.GetValue<string>());
        Assert.Equal("tv", entry["details"]!["client"]!.GetValue<string>());
    }

    [Fact]
    public async Task TheDevicesAccess_IsListedWithThePersonsApps_AndRemovingItEndsItsTokens()
    {
        using var device = _factory.CreateApi();
        var authorization = await AuthorizeDeviceAsync(device);
        using var browser = await SignedInBrowserAsync();
        await AnswerAsync(browser, authorization.GetProperty("user_code").GetString()!, "allow");
        using var response = await PollAsync(device, authorization.GetProperty("device_code").GetString()!);
        var tokens = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        var apps = await browser.GetStringAsync("/t/acme/account/apps");
        Assert.Contains("data-client=\"tv\"", apps);
        await PageForms.PostAsync(browser, "/t/acme/account/apps?handler=revoke", new() { ["clientId"] = "tv" }, "/t/acme/account/apps");

        Assert.Equal(HttpStatusCode.BadRequest, (await RefreshAsync(device, tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
    }

    [Fact]
    public async Task ACodeDenied_GivesTheDeviceAccessDenied()
    {
        using var device = _factory.CreateApi();
        var authorization = await AuthorizeDeviceAsync(device);
        using var browser = await SignedInBrowserAsync();

        var done = await AnswerAsync(browser, authorization.GetProperty("user_code").GetString()!, "deny");

        Assert.Contains("Device not connected", done);
        Assert.Equal("access_denied", await PollErrorAsync(device, authorization.GetProperty("device_code").GetString()!));
        Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.device_denied", expected: HttpStatusCode.OK))["items"]!.AsArray());
    }

    [Fact]
    public async Task ALinkWithTheCode_SignsInFirst_ThenAsks_AndATypedCodeIsAskedToo()
    {
        using var device = _factory.CreateApi();
        var userCode = (await AuthorizeDeviceAsync(device)).GetProperty("user_code").GetString()!;
        using var browser = _factory.CreateBrowser();

        var login = OidcFlow.Location(await browser.GetAsync($"/t/acme/device?user_code={userCode}"));
        Assert.Equal("/t/acme/login", login.AbsolutePath);
        Assert.Contains(Uri.EscapeDataString($"/t/acme/device?user_code={userCode}"), login.Query);

        await new OidcFlow(browser, "acme", "web").GetCodeAsync("ada@acme.test", Password);
        var entry = await browser.GetStringAsync("/t/acme/device");
        Assert.Contains("<label for=\"user_code\">Enter the code your device shows</label>", entry);
        Assert.Matches("<input id=\"user_code\"[^>]*autocomplete=\"one-time-code\"", entry);

        // Typed as people type it: with spaces instead of dashes, in lower case.
        var typed = userCode.Replace('-', ' ').ToLowerInvariant();
        var asked = await PageForms.PostAsync(browser, "/t/acme/device", new() { ["user_code"] = typed });
        Assert.Contains("Allow Living room TV on your device?", asked);
        Assert.DoesNotContain("Device connected", asked);
    }

    [Fact]
    public async Task AWrongOrExpiredCode_IsSaidOnThePage_AndTheDeviceGetsExpiredToken()
    {
        using var device = _factory.CreateApi();
        var authorization = await AuthorizeDeviceAsync(device);
        using var browser = await SignedInBrowserAsync();

        var wrong = await PageForms.PostAsync(browser, "/t/acme/device", new() { ["user_code"] = "0000-0000-0000" });
        Assert.Contains("That code is not valid, or it has expired.", wrong);

        _factory.Time.Advance(TimeSpan.FromSeconds(authorization.GetProperty("expires_in").GetInt32() + 1));
        var expired = await PageForms.PostAsync(browser, "/t/acme/device", new() { ["user_code"] = authorization.GetProperty("user_code").GetString()!, ["decision"] = "allow" });
        Assert.Contains("That code is not valid, or it has expired.", expired);
        Assert.Equal("expired_token", await PollErrorAsync(device, authorization.GetProperty("device_code").GetString()!));
    }

    [Fact]
    public async Task ACodeAllowedByOnePerson_CannotBeAnsweredByAnother_AndTheDeviceKeepsItsTokens()
    {
        await _factory.CreateUserAsync("acme", "bob@acme.test", Password);
        using var device = _factory.CreateApi();
        var authorization = await AuthorizeDeviceAsync(device);
        var userCode = authorization.GetProperty("user_code").GetString()!;
        using var ada = await SignedInBrowserAsync();
        using var bob = await SignedInBrowserAsync("bob@acme.test");
        Assert.Contains("Allow Living room TV", await bob.GetStringAsync($"/t/acme/device?user_code={userCode}"));

        await AnswerAsync(ada, userCode, "allow");
        var late = await PageForms.PostAsync(bob, "/t/acme/device", new() { ["user_code"] = userCode, ["decision"] = "allow" }, $"/t/acme/device?user_code={userCode}");

        Assert.DoesNotContain("Device connected", late);
        Assert.Contains("That code is not valid, or it has expired.", late);
        using var response = await PollAsync(device, authorization.GetProperty("device_code").GetString()!);
        var tokens = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(_userId, new JsonWebToken(tokens.GetProperty("access_token").GetString()).Subject);
    }

    [Fact]
    public async Task AClientWithoutTheGrant_OrAResourceNotAllowed_IsRefused()
    {
        using var device = _factory.CreateApi();
        var web = await device.PostAsync("/t/acme/connect/device", new FormUrlEncodedContent(new Dictionary<string, string> { ["client_id"] = "web", ["scope"] = "openid" }));
        Assert.Equal(HttpStatusCode.BadRequest, web.StatusCode);
        Assert.Equal("unauthorized_client", JsonDocument.Parse(await web.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());

        var resource = await device.PostAsync("/t/acme/connect/device", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = "tv", ["scope"] = "openid", ["resource"] = "https://api.elsewhere.example",
        }));
        Assert.Equal(HttpStatusCode.BadRequest, resource.StatusCode);
        Assert.Equal("invalid_target", JsonDocument.Parse(await resource.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task TheClientAndDiscovery_ShowTheGrant()
    {
        var client = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/clients/tv", expected: HttpStatusCode.OK);
        Assert.Contains("urn:ietf:params:oauth:grant-type:device_code", client["grantTypes"]!.AsArray().Select(g => g!.GetValue<string>()));
        Assert.Contains("openid", client["scopes"]!.AsArray().Select(g => g!.GetValue<string>()));

        using var api = _factory.CreateApi();
        var discovery = JsonDocument.Parse(await api.GetStringAsync("/t/acme/.well-known/openid-configuration")).RootElement;
        Assert.Equal("http://localhost/t/acme/connect/device", discovery.GetProperty("device_authorization_endpoint").GetString());
        Assert.Contains("urn:ietf:params:oauth:grant-type:device_code", discovery.GetProperty("grant_types_supported").EnumerateArray().Select(g => g.GetString()));
    }

    [Fact]
    public async Task PollingFasterThanTheInterval_IsAskedToSlowDown()
    {
        using var device = _factory.CreateApi();
        var deviceCode = (await AuthorizeDeviceAsync(device)).GetProperty("device_code").GetString()!;
        Assert.Equal("authorization_pending", await PollErrorAsync(device, deviceCode));

        _factory.Time.Advance(TimeSpan.FromSeconds(1));
        using var fast = await PollNowAsync(device, deviceCode);
        Assert.Equal(HttpStatusCode.BadRequest, fast.StatusCode);
        Assert.Equal("slow_down", JsonDocument.Parse(await fast.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());

        Assert.Equal("authorization_pending", await PollErrorAsync(device, deviceCode));
    }

    [Fact]
    public async Task Polling_IsNotCountedAsErrorsForAlerts()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { alerts = new { errorsPerMinute = 3 } }, HttpStatusCode.OK);
        using var device = _factory.CreateApi();
        var deviceCode = (await AuthorizeDeviceAsync(device)).GetProperty("device_code").GetString()!;

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("authorization_pending", await PollErrorAsync(device, deviceCode));
        }

        // Two real errors: still under the threshold, as the polls did not count.
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal("invalid_grant", await PollErrorAsync(device, "not-a-device-code"));
        }

        Assert.Empty((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=alert.errors", expected: HttpStatusCode.OK))["items"]!.AsArray());
        Assert.Equal("invalid_grant", await PollErrorAsync(device, "not-a-device-code"));
        await Eventually.TrueAsync(async () => (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=alert.errors", expected: HttpStatusCode.OK))["items"]!.AsArray().Count == 1);
        var alert = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=alert.errors", expected: HttpStatusCode.OK))["items"]!.AsArray().Single()!;
        Assert.Equal(3, alert["details"]!["errors"]!.GetValue<int>());
    }

    private static async Task<JsonElement> AuthorizeDeviceAsync(HttpClient device)
    {
        using var response = await device.PostAsync("/t/acme/connect/device", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["client_id"] = "tv", ["scope"] = "openid profile offline_access",
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Polls as a device should: the interval (5 seconds) after its last poll.</summary>
    private Task<HttpResponseMessage> PollAsync(HttpClient device, string deviceCode)
    {
        _factory.Time.Advance(TimeSpan.FromSeconds(5));
        return PollNowAsync(device, deviceCode);
    }

    private static Task<HttpResponseMessage> PollNowAsync(HttpClient device, string deviceCode) =>
        device.PostAsync(Token, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:device_code", ["client_id"] = "tv", ["device_code"] = deviceCode,
        }));

    private static Task<HttpResponseMessage> RefreshAsync(HttpClient device, string refreshToken) =>
        new OidcFlow(device, "acme", "tv").RefreshAsync(refreshToken);

    private async Task<string?> PollErrorAsync(HttpClient device, string deviceCode)
    {
        using var response = await PollAsync(device, deviceCode);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();
    }

    private async Task<HttpClient> SignedInBrowserAsync(string email = "ada@acme.test")
    {
        var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").GetCodeAsync(email, Password);
        return browser;
    }

    /// <summary>Opens the device page with the code, answers it, and follows the redirect back to the page.</summary>
    private static async Task<string> AnswerAsync(HttpClient browser, string userCode, string decision)
    {
        var page = await browser.GetStringAsync($"/t/acme/device?user_code={userCode}");
        using var response = await browser.PostAsync("/t/acme/device", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["user_code"] = userCode, ["decision"] = decision, ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(page),
        }));
        var location = OidcFlow.Location(response);
        Assert.Equal("/t/acme/device", location.AbsolutePath);
        return await browser.GetStringAsync(location.PathAndQuery);
    }
}
