using System.Net;
using System.Text.Json.Nodes;
using IdentityService.Audit;
using IdentityService.Tenancy;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Audit;

/// <summary>
/// The tenant's audit log through the management API: every sign-in and admin action, newest first and paged,
/// filtered, exported as NDJSON or CSV, and seen only by the tenant it belongs to (and the platform).
/// </summary>
public sealed class AuditApiTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Password = "correct horse battery staple";
    private const string Events = "/api/v1/tenants/acme/audit-events";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _userId = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync(Tenant);
        _userId = await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task SignIns_AreListedNewestFirst_WithWhatDecided_AndNeverThePassword()
    {
        using var browser = _factory.CreateBrowser();
        var page = new SignInPage(browser, Tenant);
        Assert.True((await page.PostAsync("ada@acme.test", "Tr0ub4dor&3", ip: "198.51.100.7")).Refused);
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "198.51.100.8")).SignedIn);

        var body = await _factory.ManageOkAsync(HttpMethod.Get, Events + "?type=signin.*", expected: HttpStatusCode.OK);
        var items = body["items"]!.AsArray();

        Assert.Equal(2, items.Count);
        var (succeeded, failed) = (items[0]!, items[1]!);
        Assert.Equal("signin.succeeded", succeeded["type"]!.GetValue<string>());
        Assert.Equal("succeeded", succeeded["outcome"]!.GetValue<string>());
        Assert.Equal("198.51.100.8", succeeded["ip"]!.GetValue<string>());
        Assert.Equal(_userId, succeeded["userId"]!.GetValue<string>());
        Assert.Equal("signin.failed", failed["type"]!.GetValue<string>());
        Assert.Equal("failed", failed["outcome"]!.GetValue<string>());
        Assert.Equal("invalid_credentials", failed["details"]!["reason"]!.GetValue<string>());
        Assert.Equal("ada@acme.test", failed["details"]!["identifier"]!.GetValue<string>());
        Assert.NotEmpty(failed["details"]!["steps"]!.AsArray());
        Assert.True(DateTimeOffset.Parse(succeeded["time"]!.GetValue<string>()) >= DateTimeOffset.Parse(failed["time"]!.GetValue<string>()));
        Assert.DoesNotContain("Tr0ub4dor", body.ToJsonString());
        Assert.Null(body["next"]);
    }

    [Fact]
    public async Task AdminActions_AreRecorded_WithTheirActor_AndTheFieldsTheyChanged()
    {
        var client = await _factory.CreateWebClientAsync(Tenant, "web");
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { name = "Ada L.", password = "another long password 43" }, HttpStatusCode.OK);
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { lockout = new { maxFailedAttempts = 5 } }, HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{_userId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme/clients/web")).StatusCode);

        var items = (await _factory.ManageOkAsync(HttpMethod.Get, Events, expected: HttpStatusCode.OK))["items"]!.AsArray();

        Assert.Equal(
            ["client.deleted", "user.deleted", "policy.changed", "user.updated", "client.created", "user.created"],
            items.Select(i => i!["type"]!.GetValue<string>()));
        var actor = $"client:{_factory.AdminClientId}@system";
        Assert.All(items, i => Assert.Equal(actor, i!["actor"]!.GetValue<string>()));
        Assert.All(items, i => Assert.Equal("succeeded", i!["outcome"]!.GetValue<string>()));
        Assert.All(items, i => Assert.Equal(TestClientIp.Default.ToString(), i!["ip"]!.GetValue<string>()));
        Assert.Equal("web", items[0]!["clientId"]!.GetValue<string>());
        Assert.Equal(_userId, items[1]!["userId"]!.GetValue<string>());
        Assert.Equal(5, items[2]!["details"]!["after"]!["lockout"]!["maxFailedAttempts"]!.GetValue<int>());
        Assert.Equal(10, items[2]!["details"]!["before"]!["lockout"]!["maxFailedAttempts"]!.GetValue<int>());
        Assert.Equal(["password", "name"], items[3]!["details"]!["fields"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.DoesNotContain("another long password", items.ToJsonString());
        Assert.DoesNotContain(Password, items.ToJsonString());
        Assert.Equal("web", client["clientId"]!.GetValue<string>());
    }

    [Fact]
    public async Task TenantsCreatedAndDeleted_AreRecordedInThePlatformsLog()
    {
        await _factory.CreateTenantAsync("brief");
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/brief")).StatusCode);

        var items = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/system/audit-events?type=tenant.*", expected: HttpStatusCode.OK))["items"]!.AsArray();

        Assert.Equal(["tenant.deleted", "tenant.created", "tenant.created"], items.Select(i => i!["type"]!.GetValue<string>()));
        Assert.Equal(["brief", "brief", Tenant], items.Select(i => i!["details"]!["tenant"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Pages_WalkTheWholeLog_NewestFirst_EachEntryOnce()
    {
        for (var i = 0; i < 4; i++)
        {
            await _factory.CreateUserAsync(Tenant, $"user{i}@acme.test", Password);
        }

        var (seen, sizes) = await _factory.WalkPagesAsync(Events, "id");

        Assert.Equal([2, 2, 1], sizes);
        Assert.Equal(seen.Select(long.Parse).OrderDescending(), seen.Select(long.Parse));
        Assert.Equal(5, seen.Distinct().Count());
    }

    [Fact]
    public async Task Filters_SelectByTypeOutcomeUserAddressAndTime()
    {
        var start = _factory.Time.GetUtcNow();
        using var browser = _factory.CreateBrowser();
        var page = new SignInPage(browser, Tenant);
        await page.PostAsync("ada@acme.test", "wrong", ip: "198.51.100.7");
        await page.PostAsync("nobody@acme.test", "wrong", ip: "2001:db8::7");
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        var later = _factory.Time.GetUtcNow();
        await page.PostAsync("ada@acme.test", Password, ip: "198.51.100.7");

        async Task<List<string>> Types(string query) =>
            (await _factory.ManageOkAsync(HttpMethod.Get, Events + "?" + query, expected: HttpStatusCode.OK))["items"]!.AsArray()
                .Select(i => i!["type"]!.GetValue<string>() + "@" + i["ip"]?.GetValue<string>()).ToList();

        Assert.Equal(["signin.failed@2001:db8::7", "signin.failed@198.51.100.7"], await Types("outcome=failed"));
        Assert.Equal(["signin.succeeded@198.51.100.7", "signin.failed@198.51.100.7"], await Types("ip=198.51.100.7"));
        Assert.Equal(["signin.failed@2001:db8::7"], await Types("ip=2001:0db8:0:0::7"));
        Assert.Equal(["signin.succeeded@198.51.100.7", "signin.failed@198.51.100.7", "user.created@" + TestClientIp.Default], await Types("userId=" + _userId));
        Assert.Equal(["user.created@" + TestClientIp.Default], await Types("type=user.created"));
        Assert.Equal(["signin.succeeded@198.51.100.7"], await Types("from=" + Uri.EscapeDataString(later.ToString("O"))));
        Assert.Equal(["signin.failed@2001:db8::7", "signin.failed@198.51.100.7"],
            await Types($"type=signin.*&from={Uri.EscapeDataString(start.ToString("O"))}&to={Uri.EscapeDataString(later.ToOffset(TimeSpan.FromHours(2)).ToString("O"))}"));
    }

    [Theory]
    [InlineData("from=yesterday", "from")]
    [InlineData("from=2026-01-31", "from")]
    [InlineData("to=2026-01-31T08:00:00", "to")]
    [InlineData("type=user.exploded", "type")]
    [InlineData("type=*", "type")]
    [InlineData("userId=ada", "userId")]
    [InlineData("ip=10.0.0.0/8", "ip")]
    [InlineData("outcome=maybe", "outcome")]
    [InlineData("limit=0", "limit")]
    [InlineData("cursor=bm90LWEtbnVtYmVy", "cursor")]
    public async Task BadFilters_Are400NamingThem(string query, string field)
    {
        var response = await _factory.ManageAsync(HttpMethod.Get, Events + "?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]![field]);
    }

    [Fact]
    public async Task ATenantsAdmin_ReadsItsOwnLogOnly()
    {
        await _factory.CreateTenantAsync("other");
        await _factory.CreateUserAsync("other", "eve@other.test", Password);
        var token = await _factory.TenantAdminTokenAsync(Tenant);

        var own = await _factory.ManageAsync(HttpMethod.Get, Events, token: token);
        var others = await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/other/audit-events", token: token);
        var othersExport = await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/other/audit-events/export", token: token);

        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        var text = await own.Content.ReadAsStringAsync();
        Assert.Contains(_userId, text);
        Assert.DoesNotContain("eve@other.test", text);
        Assert.Equal(HttpStatusCode.Forbidden, others.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, othersExport.StatusCode);
    }

    [Fact]
    public async Task NdjsonExport_StreamsEveryEntry_OldestFirst_PastOneBatch()
    {
        // More entries than one batch of the export's reads (500), written as the service writes them.
        var tenant = (await _factory.Services.GetRequiredService<TenantDirectory>().FindAsync(Tenant, CancellationToken.None))!;
        var log = _factory.Services.GetRequiredService<AuditLog>();
        for (var i = 0; i < 1_010; i++)
        {
            await log.WriteAsync(tenant, new AuditEvent { Type = AuditEventTypes.UserUnlocked, Outcome = "succeeded", Details = $"{{\"n\":{i}}}" });
        }

        var response = await _factory.ManageAsync(HttpMethod.Get, Events + "/export?format=ndjson");
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition?.DispositionType);
        Assert.Equal(1_011, lines.Length);
        var entries = lines.Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal("user.created", entries[0]["type"]!.GetValue<string>());
        Assert.Equal(Enumerable.Range(0, 1_010), entries.Skip(1).Select(e => e["details"]!["n"]!.GetValue<int>()));
        Assert.Equal(entries.Select(e => long.Parse(e["id"]!.GetValue<string>())).Order(), entries.Select(e => long.Parse(e["id"]!.GetValue<string>())));
    }

    [Fact]
    public async Task CsvExport_QuotesWhatItMust_AndDefusesFormulas()
    {
        using var browser = _factory.CreateBrowser();
        await new SignInPage(browser, Tenant).PostAsync("=HYPERLINK(\"http://evil.test\"),x", "wrong");
        await _factory.CreateWebClientAsync(Tenant, "-1-1");

        var response = await _factory.ManageAsync(HttpMethod.Get, Events + "/export?format=csv&type=signin.failed");
        var lines = (await response.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var clients = (await (await _factory.ManageAsync(HttpMethod.Get, Events + "/export?format=csv&type=client.created")).Content.ReadAsStringAsync())
            .Split("\r\n", StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("id,time,type,outcome,ip,userId,clientId,actor,details", lines[0]);
        Assert.Equal(2, lines.Length);
        // The details field is the entry's JSON, quoted as RFC 4180 says (its quotes doubled).
        Assert.Matches("^[0-9]+,[0-9T:.Z-]+,signin.failed,failed,203.0.113.10,,,,\"\\{.*\"\"identifier\"\":\"\"=HYPERLINK\\(\\\\\"\"http://evil.test\\\\\"\"\\),x\"\".*\\}\"$", lines[1]);
        // A field that would start a formula gets a leading quote.
        Assert.Contains(",'-1-1,client:", clients[1]);
    }

    [Fact]
    public async Task AnExportOfTheLog_IsItselfLogged_WithItsFormatAndFilters()
    {
        var csv = await _factory.ManageAsync(HttpMethod.Get, Events + "/export?format=csv&type=signin.*");
        var ndjson = await _factory.ManageAsync(HttpMethod.Get, Events + "/export");
        var lines = (await ndjson.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        var logged = (await _factory.ManageOkAsync(HttpMethod.Get, Events + "?type=audit.exported", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal(HttpStatusCode.OK, csv.StatusCode);
        Assert.Equal(2, logged.Count);
        Assert.Equal(("ndjson", "csv"), (logged[0]!["details"]!["format"]!.GetValue<string>(), logged[1]!["details"]!["format"]!.GetValue<string>()));
        Assert.Equal("signin.*", logged[1]!["details"]!["filters"]!["type"]!.GetValue<string>());
        Assert.StartsWith("client:", logged[0]!["actor"]!.GetValue<string>());
        // An export holds what was logged before it began: the first one's entry, not its own.
        Assert.Contains(lines, l => l.Contains("\"audit.exported\""));
        Assert.Single(lines, l => l.Contains("\"audit.exported\""));
    }

    [Fact]
    public async Task ExportInAnUnknownFormat_Is400()
    {
        var response = await _factory.ManageAsync(HttpMethod.Get, Events + "/export?format=xml");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]!["format"]);
    }
}
