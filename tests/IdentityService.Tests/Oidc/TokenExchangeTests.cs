using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// APIs' back ends (clients with servedResources): the orders API's back end receives a person's access token from the
/// web app, introspects it (RFC 7662), and exchanges it (OAuth 2.0 Token Exchange, RFC 8693) for a token to call the
/// billing API on their behalf; billing, in turn, for one to call the ledger.
/// </summary>
public sealed class TokenExchangeTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string Clients = "/api/v1/tenants/acme/clients";
    private const string Grant = "urn:ietf:params:oauth:grant-type:token-exchange";
    private const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";
    private const string Orders = "https://orders.acme.test";
    private const string Billing = "https://billing.acme.test";
    private const string Ledger = "https://ledger.acme.test";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private readonly Dictionary<string, string> _secrets = [];
    private string _ada = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { settings = new { apiResources = new[] { Orders, Billing, Ledger } } }, HttpStatusCode.OK);
        await _factory.CreateWebClientAsync("acme", "web");
        await _factory.ManageOkAsync(HttpMethod.Patch, $"{Clients}/web", new { defaultAudiences = new[] { Orders } }, HttpStatusCode.OK);
        await CreateApiAsync("orders-api", serves: Orders, calls: [Billing], grants: [Grant, "client_credentials"]);
        await CreateApiAsync("billing-api", serves: Billing, calls: [Ledger], grants: [Grant]);
        _ada = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task AnApi_ExchangesAPersonsToken_ForOneToCallAnotherApi_OnTheirBehalf_AndTheNextApiAgain()
    {
        var subject = await SignInAsync();
        var (status, body) = await ExchangeAsync("orders-api", subject, ("resource", Billing));
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());

        Assert.Equal(AccessTokenType, body["issued_token_type"]!.GetValue<string>());
        Assert.Equal("Bearer", body["token_type"]!.GetValue<string>());
        Assert.Null(body["refresh_token"]);
        Assert.Null(body["id_token"]);
        var token = new JsonWebToken(body["access_token"]!.GetValue<string>());
        Assert.Equal(_ada, token.Subject);
        Assert.Equal([Billing], token.Audiences);
        Assert.Equal("orders-api", token.GetClaim("client_id").Value);
        Assert.False(token.TryGetClaim("updated_at", out _), "Profile claims stay out of access tokens, as in any other.");
        Assert.Equal("""{"sub":"orders-api"}""", Act(token));
        Assert.DoesNotContain("offline_access", token.GetClaim("scope").Value.Split(' '));
        Assert.True(token.ValidTo <= new JsonWebToken(subject).ValidTo);
        Assert.True(await IsActiveAsync("orders-api", token.EncodedToken));

        // Billing calls the ledger with what it was given: the chain of actors is kept, the latest outermost.
        var (next, nextBody) = await ExchangeAsync("billing-api", token.EncodedToken, ("resource", Ledger));
        Assert.True(next == HttpStatusCode.OK, nextBody.ToJsonString());
        var second = new JsonWebToken(nextBody["access_token"]!.GetValue<string>());
        Assert.Equal(_ada, second.Subject);
        Assert.Equal([Ledger], second.Audiences);
        Assert.Equal("""{"sub":"billing-api","act":{"sub":"orders-api"}}""", Act(second));
    }

    [Fact]
    public async Task AToken_NotIssuedForAnApiTheClientServes_IsRefused_AndSoIsAClientWithoutTheGrant()
    {
        var subject = await SignInAsync();

        // Billing was handed a token meant for orders: it cannot make it its own.
        var (status, body) = await ExchangeAsync("billing-api", subject, ("resource", Ledger));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body["error"]!.GetValue<string>());

        var reporting = await _factory.ManageOkAsync(HttpMethod.Post, Clients, new { clientId = "reporting", generateSecret = true, grantTypes = new[] { "client_credentials" }, resources = new[] { Billing } });
        _secrets["reporting"] = reporting["clientSecret"]!.GetValue<string>();
        var (unauthorized, refusal) = await ExchangeAsync("reporting", subject, ("resource", Billing));
        Assert.Equal(HttpStatusCode.BadRequest, unauthorized);
        Assert.Equal("unauthorized_client", refusal["error"]!.GetValue<string>());

        // A wrong secret is a failed client authentication, whatever the token.
        _secrets["orders-api"] = "not-the-secret-of-orders-api";
        var (unauthenticated, _) = await ExchangeAsync("orders-api", subject, ("resource", Billing));
        Assert.Equal(HttpStatusCode.Unauthorized, unauthenticated);
    }

    [Fact]
    public async Task NothingGrows_ScopesStayWithinTheSubjectTokens_AndTheApiMustBeAllowedToTheClient()
    {
        var subject = await SignInAsync(scope: "openid profile");

        var (asked, narrowed) = await ExchangeAsync("orders-api", subject, ("resource", Billing), ("scope", "profile"));
        Assert.True(asked == HttpStatusCode.OK, narrowed.ToJsonString());
        Assert.Equal("profile", new JsonWebToken(narrowed["access_token"]!.GetValue<string>()).GetClaim("scope").Value);

        await AssertRefusedAsync("invalid_scope", subject, ("resource", Billing), ("scope", "profile email"));
        // A resource not allowed to the client, as an audience not allowed: invalid_target (RFC 8707, RFC 8693).
        await AssertRefusedAsync("invalid_target", subject, ("resource", Ledger));
        await AssertRefusedAsync("invalid_target", subject, ("resource", "https://elsewhere.example"));
        await AssertRefusedAsync("invalid_target", subject);

        // RFC 8693's audience parameter names an API as resource does, under the same rules.
        var (byAudience, audienceBody) = await ExchangeAsync("orders-api", subject, ("audience", Billing));
        Assert.True(byAudience == HttpStatusCode.OK, audienceBody.ToJsonString());
        Assert.Equal([Billing], new JsonWebToken(audienceBody["access_token"]!.GetValue<string>()).Audiences);
        await AssertRefusedAsync("invalid_target", subject, ("audience", Ledger));
    }

    [Fact]
    public async Task AnExchangedToken_EndsWithTheSignInItCameFrom_AndNeverOutlivesIt()
    {
        var subject = await SignInAsync();
        var (_, body) = await ExchangeAsync("orders-api", subject, ("resource", Billing));
        var exchanged = body["access_token"]!.GetValue<string>();
        Assert.True(await IsActiveAsync("orders-api", exchanged));

        Assert.True((await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{_ada}/signout")).IsSuccessStatusCode);
        Assert.False(await IsActiveAsync("orders-api", exchanged));
        var (status, refusal) = await ExchangeAsync("orders-api", subject, ("resource", Billing));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", refusal["error"]!.GetValue<string>());

        // An expired subject token is refused, and what was exchanged from it has expired with it.
        // Exchanged half an hour into the subject token's hour: it gets the half hour left, not an hour of its own.
        var later = await SignInAsync();
        _factory.Time.Advance(TimeSpan.FromMinutes(30));
        var (_, laterBody) = await ExchangeAsync("orders-api", later, ("resource", Billing));
        var subjectEnds = new JsonWebToken(later).ValidTo;
        Assert.InRange(new JsonWebToken(laterBody["access_token"]!.GetValue<string>()).ValidTo, subjectEnds.AddSeconds(-1), subjectEnds);
        _factory.Time.Advance(new JsonWebToken(later).ValidTo - _factory.Time.GetUtcNow().UtcDateTime + TimeSpan.FromMinutes(1));
        Assert.False(await IsActiveAsync("orders-api", laterBody["access_token"]!.GetValue<string>()));
        await AssertRefusedAsync("invalid_grant", later, ("resource", Billing));
    }

    [Fact]
    public async Task OnlyAPersonsAccessToken_IsExchanged_AndActorTokensAreNotTaken()
    {
        using var browser = _factory.CreateBrowser();
        var tokens = await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        var access = tokens.GetProperty("access_token").GetString()!;

        await AssertRefusedAsync("invalid_request", tokens.GetProperty("refresh_token").GetString()!, ("resource", Billing), ("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"));
        await AssertRefusedAsync("invalid_request", tokens.GetProperty("id_token").GetString()!, ("resource", Billing), ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"));
        await AssertRefusedAsync("invalid_request", access, ("resource", Billing), ("actor_token", access), ("actor_token_type", AccessTokenType));
        await AssertRefusedAsync("invalid_request", access, ("resource", Billing), ("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"));
        await AssertRefusedAsync("invalid_grant", "not.a.token", ("resource", Billing));

        // The client's own token (client_credentials, issued to it and for the API it serves) has no person behind it.
        var own = await _factory.ClientCredentialsTokenAsync("acme", "orders-api", _secrets["orders-api"], "");
        await AssertRefusedAsync("invalid_grant", own, ("resource", Billing));
    }

    [Fact]
    public async Task AClientNamedLikeAPerson_CannotPassItsOwnTokenOffAsTheirs()
    {
        // Client ids are free text: one written as Ada's user id gets a client_credentials token whose subject reads as hers.
        var created = await _factory.ManageOkAsync(HttpMethod.Post, Clients, new
        {
            clientId = _ada, generateSecret = true, grantTypes = new[] { Grant, "client_credentials" }, resources = new[] { Orders, Billing },
            servedResources = new[] { Orders },
        });
        _secrets[_ada] = created["clientSecret"]!.GetValue<string>();
        var own = await _factory.ClientCredentialsTokenAsync("acme", _ada, _secrets[_ada], "", resource: Orders);
        Assert.Equal(_ada, new JsonWebToken(own).Subject);

        var (status, body) = await ExchangeAsync(_ada, own, ("resource", Billing));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task AnExchangeNamingNoScope_GetsTheSubjectsScopesTheClientMayAskFor_NeverTheManagementApi()
    {
        // Ada is an admin of the tenant and signed in at a web app that may manage it: her token can call the management API.
        await _factory.ManageOkAsync(HttpMethod.Patch, $"{Clients}/web", new { scopes = new[] { "openid", "profile", "email", "phone", "offline_access", "manage" } }, HttpStatusCode.OK);
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_ada}", new { roles = new[] { "admin" } }, HttpStatusCode.OK);
        var subject = await SignInAsync("openid profile phone manage");

        var (status, body) = await ExchangeAsync("orders-api", subject, ("resource", Billing));
        Assert.True(status == HttpStatusCode.OK, body.ToJsonString());
        var token = new JsonWebToken(body["access_token"]!.GetValue<string>());
        Assert.Equal(["openid", "profile"], token.GetClaim("scope").Value.Split(' ').Order());
        Assert.Equal([Billing], token.Audiences);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _factory.ManageAsync(HttpMethod.Get, Clients, token: token.EncodedToken)).StatusCode);

        // Asked for by name, a scope the client may not ask for is refused, as on any grant.
        await AssertRefusedAsync("invalid_request", subject, ("resource", Billing), ("scope", "manage"));

        // The client exchanging a token it acted in last: the act claim is not repeated.
        var (_, again) = await ExchangeAsync("orders-api", token.EncodedToken, ("resource", Billing));
        Assert.Equal("""{"sub":"orders-api"}""", Act(new JsonWebToken(again["access_token"]!.GetValue<string>())));
    }

    [Fact]
    public async Task AnApisBackEnd_IntrospectsTheTokensIssuedForIt_AndNoOtherApisTokens()
    {
        var subject = await SignInAsync();
        var (_, body) = await ExchangeAsync("orders-api", subject, ("resource", Billing));
        var forBilling = body["access_token"]!.GetValue<string>();

        // Before servedResources, an API's back end could not ask about its own tokens: they name the API, not it.
        var orders = await IntrospectAsync("orders-api", subject);
        Assert.True(orders["active"]!.GetValue<bool>(), orders.ToJsonString());
        Assert.Equal(_ada, orders["sub"]!.GetValue<string>());
        Assert.Equal("web", orders["client_id"]!.GetValue<string>());
        Assert.True((await IntrospectAsync("billing-api", forBilling))["active"]!.GetValue<bool>());

        // Billing asks about a token meant for orders: told nothing (inactive, as for any token it may not see).
        Assert.False((await IntrospectAsync("billing-api", subject))["active"]!.GetValue<bool>());

        // Serving an API is not the exchange grant: without it, orders still introspects but exchanges nothing.
        await _factory.ManageOkAsync(HttpMethod.Patch, $"{Clients}/orders-api", new { grantTypes = new[] { "client_credentials" } }, HttpStatusCode.OK);
        Assert.True((await IntrospectAsync("orders-api", subject))["active"]!.GetValue<bool>());
        await AssertRefusedAsync("unauthorized_client", subject, ("resource", Billing));

        // And a revoked sign-in reads inactive to the API's back end, which a JWT checked alone cannot tell.
        Assert.True((await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{_ada}/signout")).IsSuccessStatusCode);
        Assert.False((await IntrospectAsync("orders-api", subject))["active"]!.GetValue<bool>());
        Assert.False((await IntrospectAsync("billing-api", forBilling))["active"]!.GetValue<bool>());
    }

    [Fact]
    public async Task TheManagementApi_GivesTheGrantToConfidentialClientsOnly_AndServedApisAmongTheTenants()
    {
        var orders = await _factory.ManageOkAsync(HttpMethod.Get, $"{Clients}/orders-api", expected: HttpStatusCode.OK);
        Assert.Equal([Orders], orders["servedResources"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Contains(Grant, orders["grantTypes"]!.AsArray().Select(g => g!.GetValue<string>()));

        var publicClient = await _factory.ManageAsync(HttpMethod.Post, Clients, new { clientId = "spa", grantTypes = new[] { Grant } });
        Assert.Equal(HttpStatusCode.BadRequest, publicClient.StatusCode);
        Assert.NotNull(JsonNode.Parse(await publicClient.Content.ReadAsStringAsync())!["errors"]!["grantTypes"]);

        var unknownApi = await _factory.ManageAsync(HttpMethod.Patch, $"{Clients}/orders-api", new { servedResources = new[] { "https://elsewhere.example" } });
        Assert.Equal(HttpStatusCode.BadRequest, unknownApi.StatusCode);
        Assert.NotNull(JsonNode.Parse(await unknownApi.Content.ReadAsStringAsync())!["errors"]!["servedResources"]);

        var publicServer = await _factory.ManageAsync(HttpMethod.Patch, $"{Clients}/web", new { servedResources = new[] { Orders } });
        Assert.Equal(HttpStatusCode.BadRequest, publicServer.StatusCode);
        Assert.NotNull(JsonNode.Parse(await publicServer.Content.ReadAsStringAsync())!["errors"]!["servedResources"]);

        // Served APIs cleared: the client exchanges no one's token any more (but those issued to it or naming it).
        await _factory.ManageOkAsync(HttpMethod.Patch, $"{Clients}/orders-api", new { servedResources = Array.Empty<string>() }, HttpStatusCode.OK);
        await AssertRefusedAsync("invalid_grant", await SignInAsync(), ("resource", Billing));

        using var browser = _factory.CreateBrowser();
        using var discovery = await browser.GetAsync("/t/acme/.well-known/openid-configuration");
        var metadata = JsonNode.Parse(await discovery.Content.ReadAsStringAsync())!;
        Assert.Contains(Grant, metadata["grant_types_supported"]!.AsArray().Select(g => g!.GetValue<string>()));
    }

    private async Task CreateApiAsync(string clientId, string serves, string[] calls, string[] grants)
    {
        var created = await _factory.ManageOkAsync(HttpMethod.Post, Clients, new
        {
            clientId, generateSecret = true, grantTypes = grants, scopes = new[] { "profile", "email" }, resources = calls.Append(serves).ToArray(),
            servedResources = new[] { serves },
        });
        _secrets[clientId] = created["clientSecret"]!.GetValue<string>();
    }

    /// <summary>Ada signs in at the web app: its access token, issued for the orders API.</summary>
    private async Task<string> SignInAsync(string scope = "openid profile offline_access")
    {
        using var browser = _factory.CreateBrowser();
        var tokens = await new OidcFlow(browser, "acme", "web") { Scope = scope }.SignInAsync("ada@acme.test", Password);
        return tokens.GetProperty("access_token").GetString()!;
    }

    private async Task<(HttpStatusCode Status, JsonObject Body)> ExchangeAsync(string clientId, string subjectToken, params (string Name, string Value)[] parameters)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", Grant), new("client_id", clientId), new("client_secret", _secrets[clientId]), new("subject_token", subjectToken),
        };
        if (!parameters.Any(p => p.Name == "subject_token_type"))
        {
            form.Add(new("subject_token_type", AccessTokenType));
        }

        form.AddRange(parameters.Select(p => new KeyValuePair<string, string>(p.Name, p.Value)));
        using var client = _factory.CreateApi();
        using var response = await client.PostAsync("/t/acme/connect/token", new FormUrlEncodedContent(form));
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }

    private async Task AssertRefusedAsync(string error, string subjectToken, params (string Name, string Value)[] parameters)
    {
        var (status, body) = await ExchangeAsync("orders-api", subjectToken, parameters);
        Assert.True(status == HttpStatusCode.BadRequest, body.ToJsonString());
        Assert.Equal(error, body["error"]!.GetValue<string>());
    }

    private async Task<bool> IsActiveAsync(string clientId, string token) => (await IntrospectAsync(clientId, token))["active"]!.GetValue<bool>();

    private async Task<JsonObject> IntrospectAsync(string clientId, string token)
    {
        using var client = _factory.CreateApi();
        using var response = await client.PostAsync("/t/acme/connect/introspect", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = token, ["client_id"] = clientId, ["client_secret"] = _secrets[clientId],
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonNode.Parse(body)!.AsObject();
    }

    private static string Act(JsonWebToken token) =>
        JsonSerializer.Serialize(JsonDocument.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(token.EncodedPayload)).RootElement.GetProperty("act"));
}
