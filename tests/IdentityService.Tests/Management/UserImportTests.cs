using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Management;

/// <summary>
/// Users brought in as NDJSON (<c>POST .../users/import</c>): from this service's own export with their password
/// hashes and ids, or from another service with bcrypt hashes; each line taken or refused on its own.
/// </summary>
public sealed class UserImportTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync() => await _factory.CreateTenantAsync("beta");

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheExportOfATenant_ImportedElsewhere_SignsItsUsersInWithTheirPasswordsAndIds()
    {
        await _factory.CreateTenantAsync("acme");
        var id = await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { name = "Ada Lovelace", roles = new[] { "ops" } });
        var archive = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/export?includePasswordHashes=true");
        using var zip = new ZipArchive(new MemoryStream(await archive.Content.ReadAsByteArrayAsync()), ZipArchiveMode.Read);
        var users = await new StreamReader(zip.GetEntry("users.ndjson")!.Open()).ReadToEndAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme")).StatusCode);

        var answer = await ImportAsync("beta", users);

        Assert.Equal(1, answer["created"]!.GetValue<int>());
        Assert.Equal(id, answer["lines"]![0]!["id"]!.GetValue<string>());
        var user = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/beta/users/{id}", expected: HttpStatusCode.OK);
        Assert.Equal(("Ada Lovelace", "ops", true), (user["name"]!.GetValue<string>(), user["roles"]![0]!.GetValue<string>(), user["emailVerified"]!.GetValue<bool>()));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "beta").PostAsync("ada@acme.test", Password)).SignedIn);
        var audit = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/beta/audit-events?type=user.created", expected: HttpStatusCode.OK);
        var details = Assert.Single(audit["items"]!.AsArray())!["details"]!;
        Assert.Equal("import", details["via"]!.GetValue<string>());
        Assert.Contains("password", details["fields"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.DoesNotContain("AQAAAA", audit.ToJsonString());
    }

    [Fact]
    public async Task ABcryptHash_SignsIn_AndIsReplacedByTheServicesOwnAtThatSignIn()
    {
        var bcrypt = BCrypt.Net.BCrypt.HashPassword(Password, 10);
        var answer = await ImportAsync("beta", $$"""{"email": "bob@beta.test", "emailVerified": true, "passwordHash": "{{bcrypt}}"}""");
        Assert.Equal("created", answer["lines"]![0]!["outcome"]!.GetValue<string>());

        Assert.True((await new SignInPage(_factory.CreateBrowser(), "beta").PostAsync("bob@beta.test", "not the password")).Refused);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "beta").PostAsync("bob@beta.test", Password)).SignedIn);

        var archive = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/beta/export?includePasswordHashes=true");
        using var zip = new ZipArchive(new MemoryStream(await archive.Content.ReadAsByteArrayAsync()), ZipArchiveMode.Read);
        var exported = JsonNode.Parse(await new StreamReader(zip.GetEntry("users.ndjson")!.Open()).ReadToEndAsync())!;
        Assert.Equal(0x01, Convert.FromBase64String(exported["passwordHash"]!.GetValue<string>())[0]);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "beta").PostAsync("bob@beta.test", Password)).SignedIn);
    }

    [Fact]
    public async Task EachLine_IsTakenOrRefusedOnItsOwn_AndADryRunCreatesNothing()
    {
        await _factory.CreateUserAsync("beta", "taken@beta.test", Password);
        var body = string.Join("\n",
            """{"email": "one@beta.test", "givenName": "One"}""",
            """{"email": "not an address"}""",
            "",
            """{"email": "two@beta.test", "passwordHash": "plain-text-password"}""",
            """{"email": "three@beta.test", """,
            """{"email": "taken@beta.test"}""",
            """{"email": "four@beta.test", "phoneNumber": "+33612345678", "mfaEnrolled": true, "updatedAt": null}""");

        var dry = await ImportAsync("beta", body, "?dryRun=true");
        Assert.True(dry["dryRun"]!.GetValue<bool>());
        Assert.Single((await _factory.WalkPagesAsync("/api/v1/tenants/beta/users", "id")).Seen);

        var answer = await ImportAsync("beta", body);
        var outcomes = answer["lines"]!.AsArray().Select(l => (l!["line"]!.GetValue<int>(), l["outcome"]!.GetValue<string>())).ToList();
        Assert.Equal([(1, "created"), (2, "invalid"), (4, "invalid"), (5, "invalid"), (6, "exists"), (7, "created")], outcomes);
        Assert.Equal([(1, "valid"), (2, "invalid"), (4, "invalid"), (5, "invalid"), (6, "exists"), (7, "valid")],
            dry["lines"]!.AsArray().Select(l => (l!["line"]!.GetValue<int>(), l["outcome"]!.GetValue<string>())).ToList());
        Assert.NotNull(answer["lines"]![1]!["errors"]!["email"]);
        Assert.NotNull(answer["lines"]![2]!["errors"]!["passwordHash"]);
        Assert.NotNull(answer["lines"]![3]!["errors"]!["$"]);
        Assert.Equal((2, 1, 3), (answer["created"]!.GetValue<int>(), answer["existing"]!.GetValue<int>(), answer["invalid"]!.GetValue<int>()));
        Assert.Equal(3, (await _factory.WalkPagesAsync("/api/v1/tenants/beta/users", "id")).Seen.Count);

        // Imported without a password: no password signs it in until one is set ("Forgot your password?").
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "beta").PostAsync("one@beta.test", Password)).Refused);
    }

    [Fact]
    public async Task AnEmptyPasswordHash_IsThatLinesError_NotTheWholeImports()
    {
        var answer = await ImportAsync("beta", string.Join("\n",
            """{"email": "one@beta.test"}""",
            """{"email": "two@beta.test", "passwordHash": ""}"""));

        Assert.Equal(["created", "invalid"], answer["lines"]!.AsArray().Select(l => l!["outcome"]!.GetValue<string>()));
        Assert.NotNull(answer["lines"]![1]!["errors"]!["passwordHash"]);
    }

    [Fact]
    public async Task TimesWithAnOffset_AreKeptAsTheirInstantInUtc_AndTheNilIdIsRefused()
    {
        var answer = await ImportAsync("beta", string.Join("\n",
            """{"email": "ann@beta.test", "createdAt": "2020-01-01T05:00:00+05:00", "acceptedTermsUrl": "https://beta.test/terms", "termsAcceptedAt": "2020-01-02T05:00:00+05:00"}""",
            """{"email": "nil@beta.test", "id": "00000000-0000-0000-0000-000000000000"}"""));

        Assert.Equal(["created", "invalid"], answer["lines"]!.AsArray().Select(l => l!["outcome"]!.GetValue<string>()));
        Assert.NotNull(answer["lines"]![1]!["errors"]!["id"]);
        var ann = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/beta/users?email=ann@beta.test", expected: HttpStatusCode.OK))["items"]![0]!;
        var created = DateTimeOffset.Parse(ann["createdAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var accepted = DateTimeOffset.Parse(ann["termsAcceptedAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal((new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero), TimeSpan.Zero), (created, created.Offset));
        Assert.Equal((new DateTimeOffset(2020, 1, 2, 0, 0, 0, TimeSpan.Zero), TimeSpan.Zero), (accepted, accepted.Offset));
        Assert.Empty((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/beta/users?email=nil@beta.test", expected: HttpStatusCode.OK))["items"]!.AsArray());
    }

    [Fact]
    public async Task NotNdjson_Is415_AndTooManyLines_Are413()
    {
        using var json = new StringContent("""{"email": "a@beta.test"}""", Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await SendAsync("beta", json, "")).StatusCode);

        var tooMany = string.Join("\n", Enumerable.Repeat("{}", 10_001));
        using var lines = new StringContent(tooMany, Encoding.UTF8, "application/x-ndjson");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await SendAsync("beta", lines, "")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync("beta", new StringContent("{}", Encoding.UTF8, "application/x-ndjson"), "?dryRun=maybe")).StatusCode);
    }

    [Fact]
    public async Task AnAuthenticatorAppsSecret_IsImported_AndItsCodesAreAskedAtSignIn()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/beta/policy", new { mfa = new { mode = "optional", factors = new[] { "totp" } } }, HttpStatusCode.OK);
        var key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(10);
        // As another service's export may write it: lower case, in groups.
        var written = string.Join(' ', OtpNet.Base32Encoding.ToString(key).ToLowerInvariant().Chunk(4).Select(c => new string(c)));

        var answer = await ImportAsync("beta", $$"""{"email": "ada@beta.test", "emailVerified": true, "passwordHash": "{{BCrypt.Net.BCrypt.HashPassword(Password, 4)}}", "totpSecret": "{{written}}"}""");

        var id = answer["lines"]![0]!["id"]!.GetValue<string>();
        Assert.True((await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/beta/users/{id}", expected: HttpStatusCode.OK))["mfaEnrolled"]!.GetValue<bool>());
        using var browser = _factory.CreateBrowser();
        var password = await new SignInPage(browser, "beta").PostAsync("ada@beta.test", Password, query: "?ReturnUrl=%2Ft%2Fbeta%2Fafter");
        Assert.Equal("/t/beta/mfa", new Uri(new Uri("http://localhost"), password.Location!).AbsolutePath);
        Assert.Equal(HttpStatusCode.OK, (await PostCodeAsync(browser, "000000")).StatusCode);
        var code = new OtpNet.Totp(key).ComputeTotp(_factory.Time.GetUtcNow().UtcDateTime);
        Assert.Equal(HttpStatusCode.Redirect, (await PostCodeAsync(browser, code)).StatusCode);
        var audit = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/beta/audit-events?type=user.created", expected: HttpStatusCode.OK);
        Assert.Contains("totp", audit["items"]![0]!["details"]!["fields"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.DoesNotContain(OtpNet.Base32Encoding.ToString(key), audit.ToJsonString(), StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("JBSWY3DPEHPK3PX")]
    [InlineData("JBSWY3DPEHPK3PX1")]
    [InlineData("")]
    public async Task ASecretThatIsNoAuthenticatorsOwn_RefusesItsLine(string secret)
    {
        var answer = await ImportAsync("beta", $$"""{"email": "ada@beta.test", "totpSecret": "{{secret}}"}""", "?dryRun=true");

        var line = answer["lines"]![0]!;
        Assert.Equal("invalid", line["outcome"]!.GetValue<string>());
        Assert.NotNull(line["errors"]!["totpSecret"]);
    }

    private static async Task<HttpResponseMessage> PostCodeAsync(HttpClient browser, string code) =>
        await browser.PostAsync("/t/beta/mfa", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(await browser.GetStringAsync("/t/beta/mfa")),
            ["ReturnUrl"] = "/t/beta/after",
            ["Factor"] = "totp",
            ["Code"] = code,
        }));

    private async Task<JsonNode> ImportAsync(string tenant, string ndjson, string query = "")
    {
        using var content = new StringContent(ndjson, Encoding.UTF8, "application/x-ndjson");
        var response = await SendAsync(tenant, content, query);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!;
    }

    private async Task<HttpResponseMessage> SendAsync(string tenant, HttpContent content, string query)
    {
        using var client = _factory.CreateApi();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/tenants/{tenant}/users/import{query}") { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await _factory.AdminTokenAsync());
        return await client.SendAsync(request);
    }
}
