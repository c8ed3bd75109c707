using System.Net;
using System.IdentityModel.Tokens.Jwt;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Tests.Oidc;

public sealed class TokenContentsTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _ada = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { settings = new { apiResources = new[] { "https://api.acme.test" } } }, HttpStatusCode.OK);
        await _factory.CreateWebClientAsync("acme", scopes: ["openid", "profile", "email", "phone", "offline_access", "roles", "manage"]);
        _ada = await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { phoneNumber = "+33612345678", roles = new[] { "admin", "billing" } });
        await _factory.CreateUserAsync("acme", "bob@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task IdToken_CarriesRolesAndPhoneClaims_OnlyForTheirScopes()
    {
        using var browser = _factory.CreateBrowser();
        var withRoles = await new OidcFlow(browser, "acme", "web") { Scope = "openid roles phone" }.SignInAsync("ada@acme.test", Password);
        var token = new JsonWebToken(withRoles.GetProperty("id_token").GetString()!);

        Assert.Equal(["admin", "billing"], token.Claims.Where(c => c.Type == "role").Select(c => c.Value).Order());
        Assert.Equal("+33612345678", token.GetClaim("phone_number").Value);
        Assert.Equal("false", token.GetClaim("phone_number_verified").Value);

        var without = await new OidcFlow(browser, "acme", "web") { Scope = "openid" }.SignInAsync("ada@acme.test", Password);
        var bare = new JsonWebToken(without.GetProperty("id_token").GetString()!);
        Assert.DoesNotContain(bare.Claims, c => c.Type is "role" or "phone_number" or "email");
    }

    [Fact]
    public async Task IdToken_SaysHowTheUserSignedIn_AsTheJsonArrayOidcAsks()
    {
        using var browser = _factory.CreateBrowser();
        var tokens = await new OidcFlow(browser, "acme", "web") { Scope = "openid" }.SignInAsync("ada@acme.test", Password);
        var payload = System.Text.Json.JsonDocument.Parse(Base64UrlEncoder.Decode(tokens.GetProperty("id_token").GetString()!.Split('.')[1])).RootElement;

        Assert.Equal(System.Text.Json.JsonValueKind.Array, payload.GetProperty("amr").ValueKind);
        Assert.Equal(["pwd"], payload.GetProperty("amr").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public async Task IdToken_CarriesTheHashOfTheAccessTokenIssuedWithIt_AfterTheCodeAndAfterARefresh()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web") { Scope = "openid offline_access" };
        var first = await flow.SignInAsync("ada@acme.test", Password);
        var refreshed = await flow.RefreshAsync(first.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var second = JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync()).RootElement;

        foreach (var response in new[] { first, second })
        {
            // OpenID Connect Core 3.1.3.6 and 3.3.2.11, checked by the stock validator an ASP.NET Core client runs.
            var message = new OpenIdConnectMessage
            {
                IdToken = response.GetProperty("id_token").GetString(),
                AccessToken = response.GetProperty("access_token").GetString(),
            };
            var idToken = new JwtSecurityToken(message.IdToken);
            Assert.Equal("RS256", idToken.Header.Alg);
            AtHash.Check(message, idToken);

            var digest = SHA256.HashData(Encoding.ASCII.GetBytes(message.AccessToken!));
            Assert.Equal(Base64UrlEncoder.Encode(digest[..16]), idToken.Payload["at_hash"]);
            Assert.False(idToken.Payload.ContainsKey("c_hash"));
        }

        // The other response's access token does not match: the hash binds this pair.
        var mismatched = new OpenIdConnectMessage { IdToken = first.GetProperty("id_token").GetString(), AccessToken = second.GetProperty("access_token").GetString() };
        Assert.Throws<OpenIdConnectProtocolInvalidAtHashException>(() => AtHash.Check(mismatched, new JwtSecurityToken(mismatched.IdToken)));
    }

    [Fact]
    public async Task RefreshAndUserInfo_FollowTheUsersCurrentProfileAndRoles_AndStopOnceTheUserIsDeleted()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web") { Scope = "openid profile email phone roles offline_access" };
        var first = await flow.SignInAsync("ada@acme.test", Password);
        var ada = new JsonWebToken(first.GetProperty("id_token").GetString()!).Subject;
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{ada}",
            new { name = "Ada King", roles = new[] { "auditor" } }, HttpStatusCode.OK);

        var refreshed = await flow.RefreshAsync(first.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var tokens = JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync()).RootElement;
        var idToken = new JsonWebToken(tokens.GetProperty("id_token").GetString()!);
        Assert.Equal(ada, idToken.Subject);
        Assert.Equal("Ada King", idToken.GetClaim("name").Value);
        Assert.Equal("ada@acme.test", idToken.GetClaim("email").Value);
        Assert.Equal("true", idToken.GetClaim("email_verified").Value);
        Assert.Equal("+33612345678", idToken.GetClaim("phone_number").Value);
        Assert.Equal(["auditor"], idToken.Claims.Where(c => c.Type == "role").Select(c => c.Value));

        var info = await UserInfoAsync(browser, tokens.GetProperty("access_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, info.StatusCode);
        var claims = JsonDocument.Parse(await info.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Ada King", claims.GetProperty("name").GetString());
        Assert.Equal("auditor", claims.GetProperty("role")[0].GetString());

        Assert.True((await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{ada}")).IsSuccessStatusCode);
        var afterDelete = await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.BadRequest, afterDelete.StatusCode);
        Assert.Contains("invalid_grant", await afterDelete.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, (await UserInfoAsync(browser, tokens.GetProperty("access_token").GetString()!)).StatusCode);
    }

    [Fact]
    public async Task ProfileRead_FindsOnlyTheCurrentTenantsUsers()
    {
        await _factory.CreateTenantAsync("globex");
        var eve = await _factory.CreateUserAsync("globex", "eve@globex.test", Password);

        using var scope = _factory.Services.CreateScope();
        var directory = scope.ServiceProvider.GetRequiredService<IdentityService.Tenancy.TenantDirectory>();
        scope.ServiceProvider.GetRequiredService<IdentityService.Tenancy.TenantContext>().Set((await directory.FindAsync("acme", CancellationToken.None))!);
        var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();

        var found = await IdentityService.Users.UserProfiles.FindAsync(db, _ada, CancellationToken.None);
        Assert.Equal("ada@acme.test", found?.Email);
        Assert.Null(await IdentityService.Users.UserProfiles.FindAsync(db, eve, CancellationToken.None));
        Assert.Null(await IdentityService.Users.UserProfiles.FindAsync(db, "not-a-user-id", CancellationToken.None));
    }

    private static Task<HttpResponseMessage> UserInfoAsync(HttpClient browser, string accessToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/t/acme/connect/userinfo");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        return browser.SendAsync(request);
    }

    [Fact]
    public async Task MaxAge_OlderThanTheSession_SendsThePersonBackToTheSignInPage()
    {
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        _factory.Time.Advance(TimeSpan.FromMinutes(10));

        var fresh = new OidcFlow(browser, "acme", "web");
        fresh.Extra["max_age"] = "3600";
        Assert.Contains("code=", OidcFlow.Location(await browser.GetAsync(fresh.AuthorizeUrl())).Query);

        var strict = new OidcFlow(browser, "acme", "web");
        strict.Extra["max_age"] = "60";
        Assert.EndsWith("/t/acme/login", OidcFlow.Location(await browser.GetAsync(strict.AuthorizeUrl())).AbsolutePath);
    }

    [Fact]
    public async Task LoginHint_PrefillsTheEmailOnTheSignInPage()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        flow.Extra["login_hint"] = "ada@acme.test";

        var login = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        var page = await browser.GetStringAsync(login.PathAndQuery);

        Assert.Matches("<input id=\"email\"[^>]*value=\"ada@acme.test\"", page);
    }

    [Fact]
    public async Task TenantAdminUser_WithTheManageScope_ManagesItsOwnTenantOnly()
    {
        await _factory.CreateTenantAsync("other");
        using var browser = _factory.CreateBrowser();
        var admin = (await new OidcFlow(browser, "acme", "web") { Scope = "openid manage" }.SignInAsync("ada@acme.test", Password))
            .GetProperty("access_token").GetString()!;
        using var second = _factory.CreateBrowser();
        var plain = (await new OidcFlow(second, "acme", "web") { Scope = "openid manage" }.SignInAsync("bob@acme.test", Password))
            .GetProperty("access_token").GetString()!;

        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: admin)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/other/users", token: admin)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users", token: plain)).StatusCode);
    }

    [Fact]
    public async Task AccessTokenForAResource_IsAcceptedByAStockJwtBearerApi_AndRefusedByAnotherAudienceOrOnceExpired()
    {
        var backend = await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "backend",
            generateSecret = true,
            grantTypes = new[] { "client_credentials" },
            scopes = Array.Empty<string>(),
            resources = new[] { "https://api.acme.test" },
        });
        var secret = backend["clientSecret"]!.GetValue<string>();
        using var client = _factory.CreateApi();
        var response = await client.PostAsync("/t/acme/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "backend",
            ["client_secret"] = secret,
            ["resource"] = "https://api.acme.test",
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        var accessToken = JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;

        Assert.Equal(HttpStatusCode.OK, await CallApiAsync(accessToken, audience: "https://api.acme.test"));
        Assert.Equal(HttpStatusCode.Unauthorized, await CallApiAsync(accessToken, audience: "https://other.acme.test"));

        _factory.Time.Advance(TimeSpan.FromDays(1));
        Assert.Equal(HttpStatusCode.Unauthorized, await CallApiAsync(accessToken, audience: "https://api.acme.test"));
    }

    [Fact]
    public async Task ResourceNotRegisteredForTheClient_IsRefusedAsInvalidTarget_AtTheTokenAuthorizationAndParEndpoints()
    {
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "nosy",
            clientSecret = "a-long-enough-client-secret",
            grantTypes = new[] { "client_credentials" },
        });
        using var client = _factory.CreateApi();

        var response = await client.PostAsync("/t/acme/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "nosy",
            ["client_secret"] = "a-long-enough-client-secret",
            ["resource"] = "https://api.acme.test",
        }));

        // RFC 8707's error, as for a resource that is not the tenant's at all.
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_target", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());

        // The web client may not ask for it either: its authorization request is refused (the error page says why), and
        // pushed (RFC 9126) with invalid_target.
        var flow = new OidcFlow(client, "acme", "web") { Scope = "openid" };
        flow.Extra["resource"] = "https://api.acme.test";
        using var authorize = await client.GetAsync(flow.AuthorizeUrl());
        var page = await authorize.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, authorize.StatusCode);
        Assert.Contains("This client may not ask for tokens for", page);

        var pushed = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(new Uri("http://localhost"), flow.AuthorizeUrl()).Query)
            .ToDictionary(p => p.Key, p => p.Value.ToString());
        using var par = await client.PostAsync("/t/acme/connect/par", new FormUrlEncodedContent(pushed));
        Assert.Equal(HttpStatusCode.BadRequest, par.StatusCode);
        Assert.Equal("invalid_target", JsonDocument.Parse(await par.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
    }

    /// <summary>A resource server as any ASP.NET Core API would be written: JwtBearer with the tenant as authority.</summary>
    private async Task<HttpStatusCode> CallApiAsync(string accessToken, string audience)
    {
        var serviceHandler = _factory.Server.CreateHandler();
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(options =>
        {
            options.Authority = "http://localhost/t/acme";
            options.Audience = audience;
            options.RequireHttpsMetadata = false;
            options.BackchannelHttpHandler = serviceHandler;

            // The service issued the token on the test's clock; the API reads the same clock, not the wall clock,
            // so that the check holds whatever the date the suite runs on. Skew as JwtBearer's default.
            var skew = options.TokenValidationParameters.ClockSkew;
            options.TokenValidationParameters.LifetimeValidator = (notBefore, expires, _, _) =>
            {
                var now = _factory.Time.GetUtcNow().UtcDateTime;
                return (notBefore is null || notBefore.Value - skew <= now) && expires is { } until && now < until + skew;
            };
        });
        builder.Services.AddAuthorization();
        await using var api = builder.Build();
        api.UseAuthentication();
        api.UseAuthorization();
        api.MapGet("/orders", () => "ok").RequireAuthorization();
        await api.StartAsync();
        using var http = api.GetTestClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/orders");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        var status = (await http.SendAsync(request)).StatusCode;
        await api.StopAsync();
        return status;
    }

    /// <summary>The at_hash check of Microsoft.IdentityModel's OpenID Connect validator, alone.</summary>
    private sealed class AtHash : OpenIdConnectProtocolValidator
    {
        public static void Check(OpenIdConnectMessage message, JwtSecurityToken idToken) =>
            new AtHash().ValidateAtHash(new OpenIdConnectProtocolValidationContext { ProtocolMessage = message, ValidatedIdToken = idToken });
    }
}
