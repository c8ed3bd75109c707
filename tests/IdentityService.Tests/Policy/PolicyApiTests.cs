using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using IdentityService.Data;
using IdentityService.Policy;
using IdentityService.Tenancy;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Policy;

public sealed class PolicyApiTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync() => await _factory.CreateTenantAsync("acme");

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task NewTenant_HasTheContractsDefaults()
    {
        var policy = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);

        Assert.Equal(10, policy["lockout"]!["maxFailedAttempts"]!.GetValue<int>());
        Assert.Equal(10, policy["lockout"]!["lockoutMinutes"]!.GetValue<int>());
        Assert.Equal(5, policy["ipBlocking"]!["unknownUserFailures"]!.GetValue<int>());
        Assert.Equal(30, policy["ipBlocking"]!["blockMinutes"]!.GetValue<int>());
        Assert.Empty(policy["countries"]!["allowed"]!.AsArray());
        Assert.Equal("allow", policy["countries"]!["whenUnknown"]!.GetValue<string>());
        Assert.Empty(policy["ipRules"]!["allow"]!.AsArray());
        Assert.Equal("off", policy["mfa"]!["mode"]!.GetValue<string>());
        Assert.Equal(["totp", "sms", "email"], policy["mfa"]!["factors"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.Equal(30, policy["passwordReset"]!["linkLifetimeMinutes"]!.GetValue<int>());
        Assert.Equal(60, policy["rateLimits"]!["signInPerIpPerMinute"]!.GetValue<int>());
        Assert.Equal(100, policy["rateLimits"]!["tokenRequestsPerClientPerSecond"]!.GetValue<int>());
        Assert.Equal(1000, policy["rateLimits"]!["requestsPerTenantPerSecond"]!.GetValue<int>());
        Assert.False(policy["mfa"]!["stepUp"]!["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task MergePatch_ChangesOnlyWhatItNames_AndIsRecordedWithWhoAndBeforeAfter()
    {
        var patched = await PatchAsync("""{"lockout": {"maxFailedAttempts": 5}, "countries": {"allowed": ["FR", "BE"]}}""");

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var policy = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        Assert.Equal(5, policy["lockout"]!["maxFailedAttempts"]!.GetValue<int>());
        Assert.Equal(10, policy["lockout"]!["lockoutMinutes"]!.GetValue<int>());
        Assert.Equal(["FR", "BE"], policy["countries"]!["allowed"]!.AsArray().Select(c => c!.GetValue<string>()));

        var change = await LastChangeAsync();
        Assert.Equal($"client:{_factory.AdminClientId}@system", change.Actor);
        Assert.Contains("\"maxFailedAttempts\":10", change.Before);
        Assert.Contains("\"maxFailedAttempts\":5", change.After);
    }

    [Theory]
    [InlineData("""{"lockout": {"maxFailedAttempts": 0}}""", "lockout.maxFailedAttempts")]
    [InlineData("""{"countries": {"allowed": ["FR", "XX"]}}""", "countries.allowed[1]")]
    [InlineData("""{"countries": {"whenUnknown": "maybe"}}""", "countries.whenUnknown")]
    [InlineData("""{"ipRules": {"deny": ["10.0.0.0/33"]}}""", "ipRules.deny[0]")]
    [InlineData("""{"ipRules": {"allow": ["not-an-ip"]}}""", "ipRules.allow[0]")]
    [InlineData("""{"ipRules": {"deny": ["10.0.0.0/8", "017.0.0.1"]}}""", "ipRules.deny[1]")]
    [InlineData("""{"ipRules": {"deny": ["127.1"]}}""", "ipRules.deny[0]")]
    [InlineData("""{"ipRules": {"deny": ["0x7f.0.0.1"]}}""", "ipRules.deny[0]")]
    [InlineData("""{"ipRules": {"deny": ["4294967295"]}}""", "ipRules.deny[0]")]
    [InlineData("""{"ipRules": {"deny": ["203.0.113.7/24"]}}""", "ipRules.deny[0]")]
    [InlineData("""{"ipRules": {"deny": ["2001:db8::1/32"]}}""", "ipRules.deny[0]")]
    [InlineData("""{"ipRules": {"allow": ["::ffff:203.0.113.7"]}}""", "ipRules.allow[0]")]
    [InlineData("""{"ipRules": {"allow": ["fe80::1%eth0"]}}""", "ipRules.allow[0]")]
    [InlineData("""{"ipRules": {"allow": ["fe80::1%2"]}}""", "ipRules.allow[0]")]
    [InlineData("""{"mfa": {"mode": "sometimes"}}""", "mfa.mode")]
    [InlineData("""{"lockout": {"maxFailedAttempts": "ten"}}""", "lockout.maxFailedAttempts")]
    [InlineData("""{"mfa": {"mode": 5}}""", "mfa.mode")]
    [InlineData("""{"lockout": {"maxAttempts": 3}}""", "lockout.maxAttempts")]
    [InlineData("""{"captcha": {"provider": "v3"}}""", "captcha.siteKey")]
    [InlineData("""{"captcha": {"hostnames": ["id.example.com", null]}}""", "captcha.hostnames[1]")]
    [InlineData("""{"captcha": {"hostnames": ["<script>"]}}""", "captcha.hostnames[0]")]
    [InlineData("""{"captcha": {"hostnames": ["a b.example"]}}""", "captcha.hostnames[0]")]
    [InlineData("""{"captcha": {"hostnames": ["id.example.com/login"]}}""", "captcha.hostnames[0]")]
    [InlineData("""{"mfa": {"mode": "required", "factors": []}}""", "mfa.factors")]
    [InlineData("""{"countries": {"allowed": ["FR", "BE", "FR"]}}""", "countries.allowed")]
    [InlineData("""{"lockout": {"maxFailedAttempts": 3}, "Lockout": {"maxFailedAttempts": 1000}}""", "Lockout")]
    [InlineData("""{"Mfa": {"mode": "required"}}""", "Mfa")]
    [InlineData("""{"lockout": {"MaxFailedAttempts": 1000}}""", "lockout.MaxFailedAttempts")]
    public async Task BadField_Is400NamingIt_AndNothingIsStored(string patch, string field)
    {
        var before = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);

        var response = await PatchAsync(patch);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.True(problem["errors"]!.AsObject().ContainsKey(field), problem.ToJsonString());
        var after = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        Assert.Equal(before.ToJsonString(), after.ToJsonString());
    }

    [Theory]
    [InlineData("""{"countries": {"allowed": ["\ud800"]}}""", "countries.allowed[0]")]
    [InlineData("""{"captcha": {"hostnames": ["a\udfffb"]}}""", "captcha.hostnames[0]")]
    [InlineData("""{"\ud800": 1}""", "")]
    [InlineData("""{"lockout": {"maxFailedAttempts": 3, "maxFailedAttempts": 4}}""", "")]
    public async Task TextThatIsNotUnicode_OrAFieldGivenTwice_Is400NamingWhere_ForPutAndPatch(string body, string field)
    {
        var before = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);

        foreach (var response in new[] { await PatchAsync(body), await PutAsync(body) })
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.True(problem["errors"]!.AsObject().Any(error => error.Key.TrimStart('$').TrimStart('.') == field), problem.ToJsonString());
            Assert.DoesNotContain("not valid JSON", problem.ToJsonString());
        }

        var after = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        Assert.Equal(before.ToJsonString(), after.ToJsonString());
    }

    [Fact]
    public async Task Put_WithANullSection_Is400NamingIt()
    {
        var response = await PutAsync("""{"lockout": null, "ipRules": null}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]!.AsObject();
        Assert.Equal(["ipRules", "lockout"], errors.Select(e => e.Key).Order());
    }

    [Fact]
    public async Task IpRules_WrittenAsTheyMean_AreAccepted()
    {
        var response = await PatchAsync("""{"ipRules": {"allow": ["203.0.113.7", "10.0.0.0/8", "2001:DB8::/32", "2001:0db8::1", "::1", "0.0.0.0/0"], "deny": ["198.51.100.0/24"]}}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Put_ReplacesTheWholeDocument_MissingSectionsTakeTheirDefaults()
    {
        await PatchAsync("""{"lockout": {"maxFailedAttempts": 4}}""");

        var response = await _factory.ManageAsync(HttpMethod.Put, "/api/v1/tenants/acme/policy", new { ipBlocking = new { unknownUserFailures = 7, blockMinutes = 15, distinctUsernames = 20, windowMinutes = 30 } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var policy = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        Assert.Equal(10, policy["lockout"]!["maxFailedAttempts"]!.GetValue<int>());
        Assert.Equal(7, policy["ipBlocking"]!["unknownUserFailures"]!.GetValue<int>());
    }

    [Fact]
    public async Task CaptchaSecrets_AreWriteOnly_AndKeptWhenADocumentLeavesThemOut()
    {
        var response = await PatchAsync("""{"captcha": {"provider": "v3", "siteKey": "site-key_1", "secretKey": "the-secret-key"}}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("the-secret-key", await response.Content.ReadAsStringAsync());

        var policy = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        Assert.DoesNotContain("the-secret-key", policy.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Put, "/api/v1/tenants/acme/policy", policy)).StatusCode);

        Assert.DoesNotContain("the-secret-key", (await LastChangeAsync()).After);
        Assert.Equal("the-secret-key", (await StoredAsync()).Captcha.SecretKey);
    }

    [Fact]
    public async Task TenantsPoliciesInMemory_ShareOneCopyOfEachWordOfThePolicy_AndATenantsOwnValuesStayItsOwn()
    {
        await _factory.CreateTenantAsync("other");
        var siteKeys = new Dictionary<string, string>();
        foreach (var tenant in new[] { "acme", "other" })
        {
            siteKeys[tenant] = $"site-{Guid.NewGuid():N}";
            var patch = $$$"""{"mfa": {"mode": "optional", "factors": ["totp", "email"]}, "countries": {"whenUnknown": "deny"}, "captcha": {"provider": "v3", "siteKey": "{{{siteKeys[tenant]}}}", "secretKey": "s"}}""";
            Assert.Equal(HttpStatusCode.OK, (await PatchAsync(patch, tenant)).StatusCode);
        }

        // As the sign-in path reads them: from the database, each tenant's document on its own.
        var store = _factory.Services.GetRequiredService<PolicyStore>();
        var directory = _factory.Services.GetRequiredService<TenantDirectory>();
        var acme = await store.GetAsync((await directory.FindAsync("acme", CancellationToken.None))!, CancellationToken.None);
        var other = await store.GetAsync((await directory.FindAsync("other", CancellationToken.None))!, CancellationToken.None);

        Assert.Equal("optional", acme.Mfa.Mode);
        Assert.Same(acme.Mfa.Mode, other.Mfa.Mode);
        Assert.Same(acme.Countries.WhenUnknown, other.Countries.WhenUnknown);
        Assert.Equal(["totp", "email"], acme.Mfa.Factors);
        Assert.Same(acme.Mfa.Factors[1], other.Mfa.Factors[1]);
        // A value of the tenant's own is kept as sent, and never put in the process's pool of interned strings.
        Assert.Equal(siteKeys["acme"], acme.Captcha.SiteKey);
        Assert.Equal(siteKeys["other"], other.Captcha.SiteKey);
        Assert.Null(string.IsInterned(acme.Captcha.SiteKey!));
    }

    [Fact]
    public async Task APolicyInMemory_IsReadAgainPastItsTtl_KeepingItsInstanceWhenUnchanged()
    {
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync("""{"lockout": {"maxFailedAttempts": 7}}""")).StatusCode);
        var (store, tenant) = await StoreAndTenantAsync("acme");
        var first = await store.GetAsync(tenant, CancellationToken.None);
        Assert.Equal(7, first.Lockout.MaxFailedAttempts);

        // Past the TTL, read again and unchanged: the same instance.
        _factory.Time.Advance(PolicyStore.Ttl + TimeSpan.FromSeconds(1));
        Assert.Same(first, await store.GetAsync(tenant, CancellationToken.None));

        // Changed by hand (no eviction reaches this instance): the cached policy serves while it is young, and with no
        // request in the age at which it is read ahead, the first request past the TTL reads the new one.
        await SetMaxFailedAttemptsByHandAsync("acme", 7, 3);
        _factory.Time.Advance(PolicyStore.RefreshAfter - TimeSpan.FromSeconds(1));
        Assert.Same(first, await store.GetAsync(tenant, CancellationToken.None));
        _factory.Time.Advance(PolicyStore.Ttl - PolicyStore.RefreshAfter + TimeSpan.FromSeconds(1));
        var changed = await store.GetAsync(tenant, CancellationToken.None);
        Assert.NotSame(first, changed);
        Assert.Equal(3, changed.Lockout.MaxFailedAttempts);
    }

    [Fact]
    public async Task PoliciesInUse_AreReadAgainInTheBackground_SoAChangeByHandIsSeenBeforeTheTtl_EachTenantItsOwn()
    {
        var (store, acme, bravo, acmeFirst, bravoFirst) = await TwoPoliciesInUseAsync(bravoMaxFailedAttempts: 8);
        await SetMaxFailedAttemptsByHandAsync("acme", 7, 4);
        await SetMaxFailedAttemptsByHandAsync("bravo", 8, 5);

        // Both due at once: these requests are served from their entries and start the reads.
        _factory.Time.Advance(PolicyStore.RefreshAfter);
        Assert.Same(acmeFirst, await store.GetAsync(acme, CancellationToken.None));
        Assert.Same(bravoFirst, await store.GetAsync(bravo, CancellationToken.None));

        await Eventually.TrueAsync(async () => (await store.GetAsync(acme, CancellationToken.None)).Lockout.MaxFailedAttempts == 4);
        await Eventually.TrueAsync(async () => (await store.GetAsync(bravo, CancellationToken.None)).Lockout.MaxFailedAttempts == 5);
    }

    [Fact]
    public async Task UnchangedPoliciesReadAgainInTheBackground_KeepTheirInstances_AndLiveOnFromThatRead()
    {
        // acme has a stored policy, bravo none (the defaults): both are read again, and kept.
        var (store, acme, bravo, acmeFirst, bravoFirst) = await TwoPoliciesInUseAsync(bravoMaxFailedAttempts: null);
        Assert.Equal(10, bravoFirst.Lockout.MaxFailedAttempts);
        var (acmeRead, bravoRead) = (store.ReadAt("acme")!.Value, store.ReadAt("bravo")!.Value);

        _factory.Time.Advance(PolicyStore.RefreshAfter);
        await store.GetAsync(acme, CancellationToken.None);
        await store.GetAsync(bravo, CancellationToken.None);
        await Eventually.TrueAsync(() => store.ReadAt("acme") >= acmeRead + PolicyStore.RefreshAfter && store.ReadAt("bravo") >= bravoRead + PolicyStore.RefreshAfter);

        // Past the first reads' TTL, the entries still serve the same instances, without a read on the request's path.
        _factory.Time.Advance(PolicyStore.Ttl - PolicyStore.RefreshAfter + TimeSpan.FromSeconds(1));
        (acmeRead, bravoRead) = (store.ReadAt("acme")!.Value, store.ReadAt("bravo")!.Value);
        Assert.Same(acmeFirst, await store.GetAsync(acme, CancellationToken.None));
        Assert.Same(bravoFirst, await store.GetAsync(bravo, CancellationToken.None));
        Assert.Equal(acmeRead, store.ReadAt("acme"));
        Assert.Equal(bravoRead, store.ReadAt("bravo"));
    }

    [Fact]
    public async Task AStoredPolicyThatNoLongerParses_LeavesTheTenantOnItsLastPolicyUntilTheTtl()
    {
        // Only possible by hand (the API validates every document): acme's is broken, bravo's changed, both due.
        var (store, acme, bravo, acmeFirst, _) = await TwoPoliciesInUseAsync(bravoMaxFailedAttempts: 8);
        var acmeRead = store.ReadAt("acme");
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            (await db.Set<TenantPolicyRecord>().SingleAsync()).Document = "{\"lockout\": ";
            await db.SaveChangesAsync();
        }

        await SetMaxFailedAttemptsByHandAsync("bravo", 8, 5);

        // acme is queued first: one worker reads the queue in order, so once bravo's change is seen, acme was read.
        _factory.Time.Advance(PolicyStore.RefreshAfter);
        await store.GetAsync(acme, CancellationToken.None);
        await store.GetAsync(bravo, CancellationToken.None);
        await Eventually.TrueAsync(async () => (await store.GetAsync(bravo, CancellationToken.None)).Lockout.MaxFailedAttempts == 5);

        Assert.Same(acmeFirst, await store.GetAsync(acme, CancellationToken.None));
        Assert.Equal(acmeRead, store.ReadAt("acme"));
        var served = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        Assert.Equal(7, served["lockout"]!["maxFailedAttempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task AStoredPolicyWithAFieldAnEarlierVersionWrote_IsStillRead_AndTheFieldGoesAtTheNextChange()
    {
        // 0.29 wrote signUp.termsUrl for one commit before it became terms.url: the bench's database kept one (a 500).
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { lockout = new { maxFailedAttempts = 7 } }, HttpStatusCode.OK);
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            var record = await db.Set<TenantPolicyRecord>().SingleAsync();
            var document = JsonNode.Parse(record.Document)!;
            document["signUp"]!["termsUrl"] = null;
            record.Document = document.ToJsonString();
            await db.SaveChangesAsync();
        }

        using var fresh = new IdentityServiceFactory(_factory) { Output = output };
        var read = await fresh.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        var changed = await fresh.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { lockout = new { maxFailedAttempts = 8 } }, HttpStatusCode.OK);

        Assert.Equal(7, read["lockout"]!["maxFailedAttempts"]!.GetValue<int>());
        Assert.Null(changed["signUp"]!["termsUrl"]);
        Assert.False(changed["signUp"]!.AsObject().ContainsKey("termsUrl"));
        Assert.Equal(HttpStatusCode.OK, (await fresh.CreateBrowser().GetAsync("/t/acme/login")).StatusCode);
        // What a caller sends is still refused for an unknown field.
        Assert.Equal(HttpStatusCode.BadRequest, (await fresh.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { signUp = new { termsUrl = "https://acme.example/terms" } })).StatusCode);
    }

    [Fact]
    public async Task AnotherTenantsAdmin_CannotReadOrChangeThePolicy()
    {
        await _factory.CreateTenantAsync("other");
        var token = await _factory.TenantAdminTokenAsync("other");

        Assert.Equal(HttpStatusCode.Forbidden, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", token: token)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/other/policy", token: token)).StatusCode);
    }

    /// <summary>
    /// acme with a stored policy (7 failed attempts), bravo made with one (<paramref name="bravoMaxFailedAttempts"/>) or
    /// with none (the defaults); both policies read once through the store.
    /// </summary>
    private async Task<(PolicyStore Store, Tenant Acme, Tenant Bravo, TenantPolicy AcmeFirst, TenantPolicy BravoFirst)> TwoPoliciesInUseAsync(int? bravoMaxFailedAttempts)
    {
        await _factory.CreateTenantAsync("bravo");
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync("""{"lockout": {"maxFailedAttempts": 7}}""")).StatusCode);
        if (bravoMaxFailedAttempts is { } attempts)
        {
            Assert.Equal(HttpStatusCode.OK, (await PatchAsync($$"""{"lockout": {"maxFailedAttempts": {{attempts}} } }""", "bravo")).StatusCode);
        }

        var (store, acme) = await StoreAndTenantAsync("acme");
        var (_, bravo) = await StoreAndTenantAsync("bravo");
        return (store, acme, bravo, await store.GetAsync(acme, CancellationToken.None), await store.GetAsync(bravo, CancellationToken.None));
    }

    private async Task<(PolicyStore Store, Tenant Tenant)> StoreAndTenantAsync(string tenant) =>
        (_factory.Services.GetRequiredService<PolicyStore>(), (await _factory.Services.GetRequiredService<TenantDirectory>().FindAsync(tenant, CancellationToken.None))!);

    /// <summary>Written to the database without the API, so that no instance is told: only a read shows it.</summary>
    private async Task SetMaxFailedAttemptsByHandAsync(string tenant, int from, int to)
    {
        using var scope = await _factory.TenantScopeAsync(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var record = await db.Set<TenantPolicyRecord>().SingleAsync();
        record.Document = record.Document.Replace($"\"maxFailedAttempts\":{from}", $"\"maxFailedAttempts\":{to}", StringComparison.Ordinal);
        await db.SaveChangesAsync();
    }

    private Task<HttpResponseMessage> PatchAsync(string json, string tenant = "acme") =>
        SendPolicyAsync(HttpMethod.Patch, json, "application/merge-patch+json", tenant);

    private Task<HttpResponseMessage> PutAsync(string json) => SendPolicyAsync(HttpMethod.Put, json, "application/json", "acme");

    private async Task<HttpResponseMessage> SendPolicyAsync(HttpMethod method, string json, string mediaType, string tenant)
    {
        using var client = _factory.CreateApi();
        using var request = new HttpRequestMessage(method, $"/api/v1/tenants/{tenant}/policy")
        {
            Content = new StringContent(json, Encoding.UTF8, mediaType),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await _factory.AdminTokenAsync());
        return await client.SendAsync(request);
    }

    private sealed record Change(string? Actor, string Before, string After);

    private async Task<Change> LastChangeAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var last = await db.Set<IdentityService.Audit.AuditEvent>().AsNoTracking()
            .Where(e => e.Type == "policy.changed").OrderByDescending(e => e.Id).FirstAsync();
        var details = System.Text.Json.Nodes.JsonNode.Parse(last.Details!)!;
        return new Change(last.Actor, details["before"]!.ToJsonString(), details["after"]!.ToJsonString());
    }

    private async Task<TenantPolicy> StoredAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var record = await db.Set<TenantPolicyRecord>().AsNoTracking().SingleAsync();
        return System.Text.Json.JsonSerializer.Deserialize<TenantPolicy>(record.Document, PolicyStore.Json)!;
    }
}
