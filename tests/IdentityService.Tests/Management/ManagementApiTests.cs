using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Management;

public sealed class ManagementApiTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Password = "a long enough password 42";
    private readonly IdentityServiceFactory _factory = new();

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        await _factory.CreateTenantAsync(Tenant);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Theory]
    [InlineData("GET", "/api/v1/tenants")]
    [InlineData("POST", "/api/v1/tenants")]
    [InlineData("GET", "/api/v1/tenants/acme/users")]
    [InlineData("DELETE", "/api/v1/tenants/acme")]
    public async Task NoToken_Is401ProblemJson(string method, string path)
    {
        // Arrange
        using var client = _factory.CreateApi();
        using var request = new HttpRequestMessage(new HttpMethod(method), path);

        // Act
        var response = await client.SendAsync(request);

        // Assert
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString());
        Assert.Equal(401, JsonNode.Parse(await response.Content.ReadAsStringAsync())!["status"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("Bearer not-a-jwt")]
    [InlineData("Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwOi8vbG9jYWxob3N0L3Qvc3lzdGVtIn0.")]
    [InlineData("Basic cGxhdGZvcm0tYWRtaW46eA==")]
    [InlineData("Bearer a.b.c.d.e")]
    [InlineData("Bearer eHg.e30.AAAA")]
    [InlineData("Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOjEyM30.")]
    public async Task BadToken_Is401ProblemJson(string authorization)
    {
        // Arrange
        using var client = _factory.CreateApi();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/tenants");
        request.Headers.TryAddWithoutValidation("Authorization", authorization);

        // Act
        var response = await client.SendAsync(request);

        // Assert
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("GET", "/api/v1/nothing-here", HttpStatusCode.NotFound)]
    [InlineData("GET", "/api/v1/tenants/acme/users/x/y/z", HttpStatusCode.NotFound)]
    [InlineData("PUT", "/api/v1/tenants/acme", HttpStatusCode.MethodNotAllowed)]
    [InlineData("DELETE", "/api/v1/tenants", HttpStatusCode.MethodNotAllowed)]
    public async Task NoSuchRouteOrMethod_IsProblemJson(string method, string path, HttpStatusCode expected)
    {
        var response = await _factory.ManageAsync(new HttpMethod(method), path);

        Assert.Equal(expected, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task TokenWithoutManageScope_Is401()
    {
        // Arrange
        var created = await _factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients", new
        {
            clientId = "reader",
            generateSecret = true,
            grantTypes = new[] { "client_credentials" },
            scopes = new[] { "profile" },
        });
        var token = await _factory.ClientCredentialsTokenAsync(Tenant, "reader", created["clientSecret"]!.GetValue<string>(), "profile");

        // Act
        var response = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users", token: token);

        // Assert
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Theory]
    [InlineData("{", "$")]
    [InlineData("{\"id\": \"tr", "id")]
    [InlineData("{\"id\": \"truncated\", \"displayName\": ", "displayName")]
    [InlineData("not json", "$")]
    [InlineData("[]", "$")]
    [InlineData("\"a string\"", "$")]
    [InlineData("{\"id\": 12, \"displayName\": \"X\"}", "id")]
    [InlineData("{\"id\": \"wrongtype\", \"displayName\": [\"X\"]}", "displayName")]
    [InlineData("{\"id\": \"wrongtype\", \"displayName\": \"X\", \"settings\": {\"accessTokenLifetimeSeconds\": \"long\"}}", "accessTokenLifetimeSeconds")]
    [InlineData("{\"id\": \"unknown\", \"displayName\": \"X\", \"colour\": \"red\"}", "colour")]
    [InlineData("{\"id\": \"unknown\", \"displayName\": \"X\", \"settings\": {\"colour\": \"red\"}}", "colour")]
    [InlineData("{\"id\": \"twice\", \"id\": \"unknown\", \"displayName\": \"X\"}", "id")]
    public async Task BadJsonBody_Is400NamingTheField(string body, string field)
    {
        // Act
        var response = await RawAsync(HttpMethod.Post, "/api/v1/tenants", body);
        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);

        // Assert
        var errors = problem["errors"]!.AsObject();
        Assert.Contains(errors, e => e.Key.Contains(field, StringComparison.Ordinal));
        Assert.DoesNotContain(await ListTenantIdsAsync(), id => id is "truncated" or "wrongtype" or "unknown" or "twice");
    }

    [Fact]
    public async Task TextThatIsNotUnicode_Is400SayingSo()
    {
        var response = await RawAsync(HttpMethod.Post, "/api/v1/tenants", "{\"id\": \"uni\", \"displayName\": \"a\\ud800b\"}");
        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);

        var error = Assert.Single(problem["errors"]!.AsObject());
        Assert.Contains("displayName", error.Key);
        Assert.Contains("Unicode", error.Value!.ToJsonString());
    }

    [Theory]
    [InlineData("POST", "/api/v1/tenants", "{}", new[] { "id", "displayName" })]
    [InlineData("POST", "/api/v1/tenants/acme/users", "{}", new[] { "email", "password" })]
    [InlineData("POST", "/api/v1/tenants/acme/users", "{\"email\": \"x@acme.test\"}", new[] { "password" })]
    [InlineData("POST", "/api/v1/tenants/acme/clients", "{}", new[] { "clientId", "redirectUris" })]
    [InlineData("POST", "/api/v1/tenants/acme/clients", "{\"clientId\": \"web\"}", new[] { "redirectUris" })]
    public async Task MissingRequiredFields_Are400NamingEachOfThem(string method, string path, string body, string[] fields)
    {
        // Act
        var response = await RawAsync(new HttpMethod(method), path, body);
        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);

        // Assert
        var errors = problem["errors"]!.AsObject();
        foreach (var field in fields)
        {
            Assert.True(errors.ContainsKey(field), $"{field} not named in {problem.ToJsonString()}");
        }
    }

    [Fact]
    public async Task DuplicateTenant_Is409()
    {
        // Act
        var response = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants", new { id = Tenant, displayName = "Again" });

        // Assert
        await ProblemAsync(response, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task DuplicateClient_Is409()
    {
        // Arrange
        await _factory.CreateWebClientAsync(Tenant);

        // Act
        var response = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients", new { clientId = "web", redirectUris = new[] { "https://other.example/cb" } });

        // Assert
        await ProblemAsync(response, HttpStatusCode.Conflict);
    }

    [Theory]
    [InlineData("sam@acme.test")]
    [InlineData("SAM@ACME.TEST")]
    public async Task DuplicateUserEmail_Is409(string email)
    {
        // Arrange
        await _factory.CreateUserAsync(Tenant, "sam@acme.test", Password);

        // Act
        var response = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/users", new { email, password = Password });

        // Assert
        await ProblemAsync(response, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task PatchUserToAnotherUsersEmail_Is409()
    {
        // Arrange
        await _factory.CreateUserAsync(Tenant, "one@acme.test", Password);
        var two = await _factory.CreateUserAsync(Tenant, "two@acme.test", Password);

        // Act
        var response = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/users/{two}", new { email = "one@acme.test" });

        // Assert
        await ProblemAsync(response, HttpStatusCode.Conflict);
    }

    [Theory]
    [InlineData("POST", "/api/v1/tenants")]
    [InlineData("POST", "/api/v1/tenants/acme/users")]
    [InlineData("POST", "/api/v1/tenants/acme/clients")]
    [InlineData("PATCH", "/api/v1/tenants/acme")]
    public async Task BodyOver64KiB_Is413(string method, string path)
    {
        // Arrange
        var body = "{\"displayName\": \"" + new string('x', 70 * 1024) + "\"}";

        // Act
        var response = await RawAsync(new HttpMethod(method), path, body);

        // Assert
        await ProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task BodyOver64KiB_WithoutContentLength_Is413()
    {
        // Arrange: a streamed body, whose length the server learns only by reading it.
        var bytes = Encoding.UTF8.GetBytes("{\"displayName\": \"" + new string('x', 70 * 1024) + "\"}");
        var content = new StreamContent(new NonSeekableStream(bytes));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        // Act
        var response = await SendAsync(HttpMethod.Post, "/api/v1/tenants", content);

        // Assert
        await ProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task WrongContentType_Is415ProblemJson()
    {
        // Act
        var response = await RawAsync(HttpMethod.Post, "/api/v1/tenants", "{\"id\": \"ctype\", \"displayName\": \"X\"}", "text/plain");

        // Assert
        await ProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
    }

    [Theory]
    [InlineData("https://app.example/cb")]
    [InlineData("https://app.example:8443/cb?x=1")]
    [InlineData("http://127.0.0.1:8080/cb")]
    [InlineData("http://[::1]:8080/cb")]
    [InlineData("http://localhost:3000/cb")]
    [InlineData("com.example.app:/oauth2redirect")]
    [InlineData("myapp://callback")]
    public async Task RedirectUri_Accepted(string uri)
    {
        // Act
        var response = await CreateClientWithRedirectAsync(uri);

        // Assert
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(uri, created["redirectUris"]![0]!.GetValue<string>());
    }

    [Theory]
    [InlineData("http://app.example/cb")]
    [InlineData("http://192.168.1.10/cb")]
    [InlineData("https://app.example/cb#fragment")]
    [InlineData("https://app.example/cb#")]
    [InlineData("/cb")]
    [InlineData("cb")]
    [InlineData("//app.example/cb")]
    [InlineData("javascript:alert(1)")]
    [InlineData("data:text/html,hi")]
    [InlineData("")]
    [InlineData(" https://app.example/cb")]
    [InlineData("https://app.example/c b")]
    [InlineData("https://app.example/cb\u0000x")]
    [InlineData("https://app.example/cb\n")]
    [InlineData("https://user:pw@app.example/cb")]
    [InlineData("myapp://user@callback")]
    public async Task RedirectUri_Refused_With400NamingIt(string uri)
    {
        // Act
        var response = await CreateClientWithRedirectAsync(uri);
        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);

        // Assert
        Assert.True(problem["errors"]!.AsObject().ContainsKey("redirectUris[0]"), problem.ToJsonString());
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/clients/native")).StatusCode);
    }

    [Fact]
    public async Task Roles_DifferingOnlyInCase_Are400_AndARoleRenamedInCaseIsKept()
    {
        var refused = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/users",
            new { email = "rz@acme.test", password = Password, roles = new[] { "ops", "OPS" } });
        var problem = await ProblemAsync(refused, HttpStatusCode.BadRequest);
        Assert.True(problem["errors"]!.AsObject().ContainsKey("roles"), problem.ToJsonString());
        Assert.Empty((await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users?email=rz%40acme.test", expected: HttpStatusCode.OK))["items"]!.AsArray());

        var created = await _factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/users",
            new { email = "rz@acme.test", password = Password, roles = new[] { "ops", "ops", "billing" } });
        var id = created["id"]!.GetValue<string>();
        var renamed = await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/users/{id}",
            new { roles = new[] { "OPS", "audit" } }, HttpStatusCode.OK);

        Assert.Equal(["billing", "ops"], created["roles"]!.AsArray().Select(r => r!.GetValue<string>()).Order());
        Assert.Equal(["audit", "ops"], renamed["roles"]!.AsArray().Select(r => r!.GetValue<string>()).Order());
    }

    [Theory]
    [InlineData("POST", "/api/v1/tenants", "{\"id\": \"ctl\", \"displayName\": \"a\\u0000b\"}")]
    [InlineData("PATCH", "/api/v1/tenants/acme", "{\"displayName\": \"a\\u001bb\"}")]
    [InlineData("PATCH", "/api/v1/tenants/acme/clients/web", "{\"displayName\": \"a\\nb\"}")]
    public async Task DisplayName_WithAControlCharacter_Is400NamingIt(string method, string path, string body)
    {
        await _factory.CreateWebClientAsync(Tenant);
        var before = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme", expected: HttpStatusCode.OK);

        var problem = await ProblemAsync(await RawAsync(new HttpMethod(method), path, body), HttpStatusCode.BadRequest);

        Assert.True(problem["errors"]!.AsObject().ContainsKey("displayName"), problem.ToJsonString());
        Assert.Equal(before.ToJsonString(), (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme", expected: HttpStatusCode.OK)).ToJsonString());
        Assert.DoesNotContain("ctl", await ListTenantIdsAsync());
    }

    [Fact]
    public async Task UserPaging_WithLimit2_WalksEveryUserOnceThenStops()
    {
        // Arrange
        var created = new HashSet<string>();
        for (var i = 0; i < 5; i++)
        {
            created.Add(await _factory.CreateUserAsync(Tenant, $"user{i}@acme.test", Password));
        }

        // Act
        var (seen, pageSizes) = await _factory.WalkPagesAsync($"/api/v1/tenants/{Tenant}/users", "id");

        // Assert
        Assert.All(pageSizes, size => Assert.InRange(size, 1, 2));
        Assert.Equal(3, pageSizes.Count);
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.Equal(created, seen.ToHashSet());
    }

    [Fact]
    public async Task ClientPaging_WithLimit2_WalksEveryClientOnceThenStops()
    {
        // Arrange
        var created = new HashSet<string>();
        foreach (var id in new[] { "c-one", "c-two", "c-three", "c-four" })
        {
            await _factory.CreateWebClientAsync(Tenant, id);
            created.Add(id);
        }

        // Act
        var (seen, pageSizes) = await _factory.WalkPagesAsync($"/api/v1/tenants/{Tenant}/clients", "clientId");

        // Assert
        Assert.Equal(2, pageSizes.Count);
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.Equal(created, seen.ToHashSet());
    }

    [Fact]
    public async Task TenantPaging_WithLimit2_WalksEveryTenantOnce()
    {
        // Arrange
        await _factory.CreateTenantAsync("beta");
        await _factory.CreateTenantAsync("gamma");

        // Act
        var (seen, _) = await _factory.WalkPagesAsync("/api/v1/tenants", "id");

        // Assert
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.Superset(new HashSet<string> { "acme", "beta", "gamma", "system" }, seen.ToHashSet());
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=201", "limit")]
    [InlineData("limit=abc", "limit")]
    [InlineData("cursor=%%%", "cursor")]
    [InlineData("cursor=bm90LWEtZ3VpZA", "cursor")]
    public async Task BadPagingParameters_Are400NamingThem(string query, string field)
    {
        // Act
        var response = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users?{query}");
        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);

        // Assert
        Assert.True(problem["errors"]!.AsObject().ContainsKey(field), problem.ToJsonString());
    }

    [Fact]
    public async Task UserList_FilteredByEmail_ReturnsOnlyThatUser()
    {
        // Arrange
        await _factory.CreateUserAsync(Tenant, "ann@acme.test", Password);
        var bob = await _factory.CreateUserAsync(Tenant, "bob@acme.test", Password);

        // Act
        var page = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users?email=BOB@acme.test", expected: HttpStatusCode.OK);
        var none = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users?email=nobody@acme.test", expected: HttpStatusCode.OK);

        // Assert
        var item = Assert.Single(page["items"]!.AsArray());
        Assert.Equal(bob, item!["id"]!.GetValue<string>());
        Assert.Empty(none["items"]!.AsArray());
        Assert.Null(page["next"]?.GetValue<string>());
    }

    [Fact]
    public async Task Users_CreateGetPatchDelete_NeverShowThePassword()
    {
        // Act: create
        var createdResponse = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/users", new { email = "eve@acme.test", password = Password, name = "Eve" });
        var createdText = await createdResponse.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.Created, createdResponse.StatusCode);
        var id = JsonNode.Parse(createdText)!["id"]!.GetValue<string>();
        Assert.Equal($"/api/v1/tenants/{Tenant}/users/{id}", createdResponse.Headers.Location?.OriginalString);

        // get, patch, list
        var get = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users/{id}");
        var getText = await get.Content.ReadAsStringAsync();
        var patch = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/users/{id}", new { name = "Eve Again", password = "another long password 43" });
        var patchText = await patch.Content.ReadAsStringAsync();
        var listText = await (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users")).Content.ReadAsStringAsync();

        // delete
        var delete = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{Tenant}/users/{id}");
        var afterDelete = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users/{id}");

        // Assert
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("Eve", JsonNode.Parse(getText)!["name"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        Assert.Equal("Eve Again", JsonNode.Parse(patchText)!["name"]!.GetValue<string>());
        foreach (var text in new[] { createdText, getText, patchText, listText })
        {
            Assert.DoesNotContain("password", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("hash", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("securityStamp", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(Password, text);
        }

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await ProblemAsync(afterDelete, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Users_PatchWithNewPassword_LetsTheUserSignInWithItOnly()
    {
        // Arrange
        var id = await _factory.CreateUserAsync(Tenant, "pat@acme.test", Password);
        await _factory.CreateWebClientAsync(Tenant);
        const string newPassword = "the brand new password 44";

        // Act
        var patch = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/users/{id}", new { password = newPassword });

        // Assert
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        using var browser = _factory.CreateBrowser();
        await Assert.ThrowsAsync<SignInRefusedException>(() => new OidcFlow(browser, Tenant, "web").GetCodeAsync("pat@acme.test", Password));
        await new OidcFlow(browser, Tenant, "web").SignInAsync("pat@acme.test", newPassword);
    }

    [Fact]
    public async Task AConfidentialClient_CannotLoseItsLastCredential_Is400()
    {
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "svc",
            grantTypes = new[] { "client_credentials" },
            scopes = Array.Empty<string>(),
            jwksUri = "https://keys.example.com/jwks.json",
        });

        var cleared = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/clients/svc", new { jwksUri = "" });

        Assert.Equal(HttpStatusCode.BadRequest, cleared.StatusCode);
        Assert.Equal("application/problem+json", cleared.Content.Headers.ContentType?.MediaType);
        Assert.Contains("jwksUri", await cleared.Content.ReadAsStringAsync());
        var kept = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/clients/svc", expected: HttpStatusCode.OK);
        Assert.Equal("https://keys.example.com/jwks.json", kept["jwksUri"]!.GetValue<string>());
    }

    [Fact]
    public async Task Clients_CreateGetPatchDelete_NeverShowTheSecret()
    {
        // Arrange
        const string secret = "a-given-client-secret-0123456789";

        // Act: create
        var createdResponse = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients", new
        {
            clientId = "portal",
            clientSecret = secret,
            displayName = "Portal",
            redirectUris = new[] { "https://portal.example/cb" },
            grantTypes = new[] { "authorization_code", "refresh_token" },
            scopes = new[] { "openid", "profile", "offline_access" },
        });
        var createdText = await createdResponse.Content.ReadAsStringAsync();

        // get, patch, list
        var get = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/clients/portal");
        var getText = await get.Content.ReadAsStringAsync();
        var patch = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/clients/portal", new { displayName = "Portal 2", redirectUris = new[] { "https://portal.example/cb2" } });
        var patchText = await patch.Content.ReadAsStringAsync();
        var listText = await (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/clients")).Content.ReadAsStringAsync();
        var delete = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{Tenant}/clients/portal");
        var afterDelete = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/clients/portal");

        // Assert
        Assert.Equal(HttpStatusCode.Created, createdResponse.StatusCode);
        Assert.Equal($"/api/v1/tenants/{Tenant}/clients/portal", createdResponse.Headers.Location?.OriginalString);
        Assert.Equal("confidential", JsonNode.Parse(createdText)!["clientType"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        var patched = JsonNode.Parse(patchText)!;
        Assert.Equal("Portal 2", patched["displayName"]!.GetValue<string>());
        Assert.Equal("https://portal.example/cb2", Assert.Single(patched["redirectUris"]!.AsArray())!.GetValue<string>());
        Assert.Contains("offline_access", patched["scopes"]!.AsArray().Select(s => s!.GetValue<string>()));
        foreach (var text in new[] { createdText, getText, patchText, listText })
        {
            Assert.DoesNotContain(secret, text);
            Assert.Null(JsonNode.Parse(text)!.AsObject().TryGetPropertyValue("clientSecret", out var value) ? value : null);
        }

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await ProblemAsync(afterDelete, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task ClientPatch_ThatChangesTheSecret_Is400()
    {
        // Arrange
        await _factory.CreateWebClientAsync(Tenant);

        // Act
        var response = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}/clients/web", new { clientSecret = "a-new-secret-through-patch-0123" });

        // Assert
        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.True(problem["errors"]!.AsObject().ContainsKey("clientSecret"));
    }

    [Fact]
    public async Task UnknownClientOrUser_Is404ProblemJson()
    {
        // Act
        var client = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/clients/nope");
        var user = await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}/users/{Guid.NewGuid()}");
        var notAGuid = await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/{Tenant}/users/not-a-guid");
        var tenant = await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/nope");

        // Assert
        foreach (var response in new[] { client, user, notAGuid, tenant })
        {
            await ProblemAsync(response, HttpStatusCode.NotFound);
        }
    }

    [Fact]
    public async Task SuspendedTenant_Answers404OnItsDiscovery_AndComesBackWhenResumed()
    {
        // Arrange
        using var anonymous = _factory.CreateApi();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync($"/t/{Tenant}/.well-known/openid-configuration")).StatusCode);

        // Act
        var suspend = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}", new { suspended = true });
        var whileSuspended = await anonymous.GetAsync($"/t/{Tenant}/.well-known/openid-configuration");
        var resume = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}", new { suspended = false });
        var afterResume = await anonymous.GetAsync($"/t/{Tenant}/.well-known/openid-configuration");

        // Assert
        Assert.Equal(HttpStatusCode.OK, suspend.StatusCode);
        Assert.True(JsonNode.Parse(await suspend.Content.ReadAsStringAsync())!["suspended"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.NotFound, whileSuspended.StatusCode);
        Assert.Equal(HttpStatusCode.OK, resume.StatusCode);
        Assert.Equal(HttpStatusCode.OK, afterResume.StatusCode);
    }

    [Fact]
    public async Task ATenantsOwnAdmin_CannotSuspendItsTenant_ButChangesTheRest()
    {
        var own = await _factory.TenantAdminTokenAsync(Tenant);

        var suspend = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}", new { suspended = true }, token: own);
        var renamed = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/{Tenant}", new { displayName = "Acme Corp", suspended = false }, token: own);

        await ProblemAsync(suspend, HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);
        var tenant = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/{Tenant}", expected: HttpStatusCode.OK);
        Assert.False(tenant["suspended"]!.GetValue<bool>());
        Assert.Equal("Acme Corp", tenant["displayName"]!.GetValue<string>());
        using var anonymous = _factory.CreateApi();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync($"/t/{Tenant}/.well-known/openid-configuration")).StatusCode);
    }

    [Fact]
    public async Task SystemTenant_CannotBeSuspendedOrDeleted()
    {
        // Act
        var suspend = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/system", new { suspended = true });
        var delete = await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/system");

        // Assert
        await ProblemAsync(suspend, HttpStatusCode.BadRequest);
        await ProblemAsync(delete, HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants")).StatusCode);
    }

    private async Task<HttpResponseMessage> CreateClientWithRedirectAsync(string uri) =>
        await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients", new
        {
            clientId = "native",
            redirectUris = new[] { uri },
            grantTypes = new[] { "authorization_code" },
        });

    private async Task<HttpResponseMessage> RawAsync(HttpMethod method, string path, string body, string contentType = "application/json")
    {
        var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        return await SendAsync(method, path, content);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent content)
    {
        using var client = _factory.CreateApi();
        using var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await _factory.AdminTokenAsync());
        return await client.SendAsync(request);
    }

    private static async Task<JsonObject> ProblemAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(text)!.AsObject();
        Assert.Equal((int)expected, problem["status"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(problem["title"]?.GetValue<string>()));
        return problem;
    }

    private async Task<List<string>> ListTenantIdsAsync()
    {
        var page = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants?limit=200", expected: HttpStatusCode.OK);
        return page["items"]!.AsArray().Select(t => t!["id"]!.GetValue<string>()).ToList();
    }

    /// <summary>A stream that cannot tell its length, so the request goes out chunked.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();
    }
}
