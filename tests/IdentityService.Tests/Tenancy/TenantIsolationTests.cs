using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Tests.Tenancy;

/// <summary>
/// Two tenants with the same client id and a user with the same email: nothing of one works at the other
/// (CONTRACT.md section 3).
/// </summary>
public sealed class TenantIsolationTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string A = "acme";
    private const string B = "bravo";
    private const string Email = "sam@example.test";
    private const string PasswordA = "acme password 1 correct";
    private const string PasswordB = "bravo password 2 different";
    private readonly IdentityServiceFactory _factory = new();

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        foreach (var (tenant, password) in new[] { (A, PasswordA), (B, PasswordB) })
        {
            await _factory.CreateTenantAsync(tenant);
            await _factory.CreateWebClientAsync(tenant);
            await _factory.CreateUserAsync(tenant, Email, password);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task UserOfA_CannotSignInAtB_WithAsPassword()
    {
        // Arrange
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, B, "web");

        // Act
        var refused = await Assert.ThrowsAsync<SignInRefusedException>(() => flow.GetCodeAsync(Email, PasswordA));

        // Assert
        Assert.Contains("Email and/or password invalid.", refused.Page);
    }

    [Fact]
    public async Task UserOfB_SignsInAtB_WithBsOwnPassword_AsADifferentSubjectThanAtA()
    {
        // Act
        using var browserA = _factory.CreateBrowser();
        using var browserB = _factory.CreateBrowser();
        var tokensA = await new OidcFlow(browserA, A, "web").SignInAsync(Email, PasswordA);
        var tokensB = await new OidcFlow(browserB, B, "web").SignInAsync(Email, PasswordB);

        // Assert
        Assert.NotEqual(Subject(tokensA.GetProperty("id_token").GetString()!), Subject(tokensB.GetProperty("id_token").GetString()!));
    }

    [Fact]
    public async Task CodeIssuedByA_IsRefusedAtBsTokenEndpoint()
    {
        // Arrange
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, A, "web");
        var code = await flow.GetCodeAsync(Email, PasswordA);

        // Act
        var response = await flow.RedeemAsync(code, path: $"/t/{B}/connect/token");

        // Assert
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_grant", await ErrorAsync(response));
        Assert.Equal(HttpStatusCode.OK, (await flow.RedeemAsync(code)).StatusCode);
    }

    [Fact]
    public async Task RefreshTokenOfA_IsRefusedAtB()
    {
        // Arrange
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, A, "web");
        var refresh = (await flow.SignInAsync(Email, PasswordA)).GetProperty("refresh_token").GetString()!;

        // Act
        var response = await flow.RefreshAsync(refresh, path: $"/t/{B}/connect/token");

        // Assert
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_grant", await ErrorAsync(response));
        Assert.Equal(HttpStatusCode.OK, (await flow.RefreshAsync(refresh)).StatusCode);
    }

    [Fact]
    public async Task AccessTokenOfA_IsRefusedByBsUserInfo()
    {
        // Arrange
        using var browser = _factory.CreateBrowser();
        var accessToken = (await new OidcFlow(browser, A, "web").SignInAsync(Email, PasswordA)).GetProperty("access_token").GetString()!;

        // Act
        var atB = await UserInfoAsync(B, accessToken);
        var atA = await UserInfoAsync(A, accessToken);

        // Assert
        Assert.True(atB.StatusCode == HttpStatusCode.Unauthorized, $"{(int)atB.StatusCode} {atB.Headers.WwwAuthenticate} {await atB.Content.ReadAsStringAsync()}");
        Assert.Equal(HttpStatusCode.OK, atA.StatusCode);
    }

    [Fact]
    public async Task SessionAtA_IsNoSessionAtB_PromptNoneAnswersLoginRequired()
    {
        // Arrange
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, A, "web").GetCodeAsync(Email, PasswordA);
        var silentB = new OidcFlow(browser, B, "web");
        silentB.Extra["prompt"] = "none";

        // Act
        var response = await browser.GetAsync(silentB.AuthorizeUrl());

        // Assert
        Assert.Contains("error=login_required", OidcFlow.Location(response).Query);
    }

    [Fact]
    public async Task SessionCookieOfA_SentByHandToB_IsNotASessionAtB()
    {
        // Arrange: sign in at A without a cookie jar, so the cookie can be sent anywhere.
        using var client = _factory.CreateApi();
        var cookie = await SessionCookieAsync(client, A, Email, PasswordA);
        var silentA = new OidcFlow(client, A, "web");
        silentA.Extra["prompt"] = "none";
        var silentB = new OidcFlow(client, B, "web");
        silentB.Extra["prompt"] = "none";

        // Act
        var atA = await GetWithCookieAsync(client, silentA.AuthorizeUrl(), cookie);
        var atB = await GetWithCookieAsync(client, silentB.AuthorizeUrl(), cookie);

        // Assert
        Assert.Contains("code=", OidcFlow.Location(atA).Query);
        Assert.Contains("error=login_required", OidcFlow.Location(atB).Query);
    }

    [Fact]
    public async Task ManagementTokenOfA_ManagesAOnly()
    {
        // Arrange
        var token = await TenantManagementTokenAsync(A);

        // Act
        var ownUsers = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{A}/users", token: token);
        var otherUsers = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{B}/users", token: token);
        var otherCreate = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{B}/users", new { email = "x@bravo.test", password = "a long enough password 42" }, token);
        var newTenant = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants", new { id = "charlie", displayName = "Charlie" }, token);
        var tenantList = await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants", token: token);

        // Assert
        Assert.Equal(HttpStatusCode.OK, ownUsers.StatusCode);
        Assert.Contains(Email, await ownUsers.Content.ReadAsStringAsync());
        foreach (var forbidden in new[] { otherUsers, otherCreate, newTenant, tenantList })
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
            Assert.Equal("application/problem+json", forbidden.Content.Headers.ContentType?.MediaType);
        }

        var bUsers = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{B}/users", expected: HttpStatusCode.OK);
        Assert.Single(bUsers["items"]!.AsArray());
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/charlie")).StatusCode);
    }

    [Fact]
    public async Task ManagementTokenOfA_CreatesUsersInAOnly()
    {
        // Arrange
        var token = await TenantManagementTokenAsync(A);

        // Act
        var created = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{A}/users", new { email = "new@acme.test", password = "a long enough password 42" }, token);

        // Assert
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var inB = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{B}/users?email=new@acme.test", expected: HttpStatusCode.OK);
        Assert.Empty(inB["items"]!.AsArray());
    }

    [Theory]
    [InlineData("/t/Acme/.well-known/openid-configuration")]
    [InlineData("/t/ACME/connect/authorize?client_id=web")]
    [InlineData("/t/unknown/.well-known/openid-configuration")]
    [InlineData("/t/unknown/.well-known/jwks")]
    [InlineData("/t/unknown/login")]
    [InlineData("/t/a/.well-known/openid-configuration")]
    [InlineData("/t/acme%2Fx/.well-known/openid-configuration")]
    [InlineData("/t/")]
    [InlineData("/t")]
    public async Task WrongCaseOrUnknownTenant_Is404NeverARedirect(string path)
    {
        // Arrange
        using var client = _factory.CreateApi();

        // Act
        var response = await client.GetAsync(path);

        // Assert
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Null(response.Headers.Location);
    }

    [Fact]
    public async Task EachTenant_HasItsOwnIssuerAndItsOwnKeys()
    {
        // Arrange
        using var client = _factory.CreateApi();

        // Act
        var discoveryA = JsonNode.Parse(await client.GetStringAsync($"/t/{A}/.well-known/openid-configuration"))!;
        var discoveryB = JsonNode.Parse(await client.GetStringAsync($"/t/{B}/.well-known/openid-configuration"))!;
        var jwksA = new JsonWebKeySet(await client.GetStringAsync($"/t/{A}/.well-known/jwks"));
        var jwksB = new JsonWebKeySet(await client.GetStringAsync($"/t/{B}/.well-known/jwks"));

        // Assert
        Assert.Equal($"http://localhost/t/{A}", discoveryA["issuer"]!.GetValue<string>());
        Assert.Equal($"http://localhost/t/{B}", discoveryB["issuer"]!.GetValue<string>());
        Assert.StartsWith($"http://localhost/t/{A}/", discoveryA["token_endpoint"]!.GetValue<string>());
        Assert.StartsWith($"http://localhost/t/{B}/", discoveryB["token_endpoint"]!.GetValue<string>());
        Assert.NotEmpty(jwksA.Keys);
        Assert.NotEmpty(jwksB.Keys);
        var material = (JsonWebKeySet set) => set.Keys.Select(k => k.N ?? k.X + "/" + k.Y).ToHashSet();
        Assert.Empty(material(jwksA).Intersect(material(jwksB)));
        Assert.Empty(jwksA.Keys.Select(k => k.Kid).Intersect(jwksB.Keys.Select(k => k.Kid)));
    }

    [Fact]
    public async Task AfterDeletingA_ItsIssuerIs404_AndItsTokensAreRefused()
    {
        // Arrange
        var managementToken = await TenantManagementTokenAsync(A);
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, A, "web");
        var tokens = await flow.SignInAsync(Email, PasswordA);
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{A}/users", token: managementToken)).StatusCode);

        // Act
        var delete = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{A}");

        // Assert
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await browser.GetAsync($"/t/{A}/.well-known/openid-configuration")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await browser.GetAsync($"/t/{A}/.well-known/jwks")).StatusCode);
        var refusedManagement = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{A}/users", token: managementToken);
        Assert.Equal(HttpStatusCode.Unauthorized, refusedManagement.StatusCode);
        Assert.Equal("application/problem+json", refusedManagement.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await UserInfoAsync(A, tokens.GetProperty("access_token").GetString()!)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{A}")).StatusCode);

        // B is untouched.
        using var other = _factory.CreateBrowser();
        await new OidcFlow(other, B, "web").SignInAsync(Email, PasswordB);
    }

    [Fact]
    public async Task AfterDeletingA_ATenantCreatedAgainWithTheSameId_DoesNotAcceptTheOldTokens()
    {
        // Arrange
        var managementToken = await TenantManagementTokenAsync(A);
        using var browser = _factory.CreateBrowser();
        var tokens = await new OidcFlow(browser, A, "web").SignInAsync(Email, PasswordA);
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{A}")).StatusCode);

        // Act
        await _factory.CreateTenantAsync(A);
        await _factory.CreateWebClientAsync(A);
        var management = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{A}/users", token: managementToken);
        var userInfo = await UserInfoAsync(A, tokens.GetProperty("access_token").GetString()!);
        var refresh = await new OidcFlow(browser, A, "web").RefreshAsync(tokens.GetProperty("refresh_token").GetString()!);

        // Assert
        Assert.Equal(HttpStatusCode.Unauthorized, management.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, userInfo.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, refresh.StatusCode);
    }

    [Fact]
    public async Task AfterDeletingA_ATenantCreatedAgainWithTheSameId_StartsFromTheDefaultPolicy_WithNoneOfItsSecrets()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/{A}/policy", new
        {
            lockout = new { maxFailedAttempts = 3 },
            captcha = new { provider = "v3", siteKey = "old-site", secretKey = "old-tenant-secret" },
        }, HttpStatusCode.OK);
        Assert.Equal("old-site", (await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{A}/policy", expected: HttpStatusCode.OK))["captcha"]!["siteKey"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{A}")).StatusCode);

        await _factory.CreateTenantAsync(A);
        var policy = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{A}/policy", expected: HttpStatusCode.OK);
        Assert.NotEqual(3, policy["lockout"]!["maxFailedAttempts"]!.GetValue<int>());
        Assert.NotEqual("old-site", policy["captcha"]?["siteKey"]?.GetValue<string>());

        // A change that leaves the secrets out keeps the new tenant's (none), never the deleted tenant's.
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/{A}/policy", new { lockout = new { lockoutMinutes = 11 } }, HttpStatusCode.OK);
        using var scope = _factory.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
        var stored = await db.Set<IdentityService.Policy.TenantPolicyRecord>().IgnoreQueryFilters().Where(r => r.TenantId == A).Select(r => r.Document).SingleAsync();
        Assert.DoesNotContain("old-tenant-secret", stored);
    }

    private async Task<string> TenantManagementTokenAsync(string tenant)
    {
        var client = await _factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{tenant}/clients", new
        {
            clientId = "automation",
            generateSecret = true,
            grantTypes = new[] { "client_credentials" },
            scopes = new[] { "manage" },
        });
        return await _factory.ClientCredentialsTokenAsync(tenant, "automation", client["clientSecret"]!.GetValue<string>(), "manage");
    }

    private async Task<HttpResponseMessage> UserInfoAsync(string tenant, string accessToken)
    {
        using var client = _factory.CreateApi();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/t/{tenant}/connect/userinfo");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        return await client.SendAsync(request);
    }

    private static async Task<string?> ErrorAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();

    private static string Subject(string jwt) =>
        new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(jwt).Subject;

    /// <summary>Signs in through the page with cookies handled by hand; returns the session cookie as name=value.</summary>
    private static async Task<string> SessionCookieAsync(HttpClient client, string tenant, string email, string password)
    {
        var page = await client.GetAsync($"/t/{tenant}/login?ReturnUrl=%2Ft%2F{tenant}%2F");
        var html = await page.Content.ReadAsStringAsync();
        var antiforgery = Cookies(page).Single(c => c.StartsWith(".AspNetCore.Antiforgery", StringComparison.Ordinal));
        using var post = new HttpRequestMessage(HttpMethod.Post, $"/t/{tenant}/login")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Email"] = email,
                ["Password"] = password,
                ["ReturnUrl"] = $"/t/{tenant}/",
                ["__RequestVerificationToken"] = OidcFlow.Hidden(html, "__RequestVerificationToken"),
            }),
        };
        post.Headers.Add("Cookie", antiforgery);
        var posted = await client.SendAsync(post);
        Assert.Equal(HttpStatusCode.Redirect, posted.StatusCode);
        return Cookies(posted).Single(c => c.StartsWith(".IdentityService.Session=", StringComparison.Ordinal));
    }

    private static IEnumerable<string> Cookies(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var values) ? values.Select(v => v.Split(';')[0]) : [];

    private static async Task<HttpResponseMessage> GetWithCookieAsync(HttpClient client, string url, string cookie)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Add("Cookie", cookie);
        return await client.SendAsync(request);
    }
}
