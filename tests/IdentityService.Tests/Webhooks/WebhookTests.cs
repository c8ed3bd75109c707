using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using IdentityService.Webhooks;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Webhooks;

/// <summary>
/// A tenant's webhooks: created with a secret shown once, listed without it, deleted; the events they subscribe to
/// are POSTed to a real endpoint on this machine, signed as Standard Webhooks says, and tried again when it fails.
/// </summary>
public sealed class WebhookTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Hooks = "/api/v1/tenants/acme/webhooks";
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private WebhookReceiver _receiver = null!;

    public async Task InitializeAsync()
    {
        _receiver = await WebhookReceiver.StartAsync();
        await _factory.CreateTenantAsync(Tenant);
    }

    public async Task DisposeAsync() => await _receiver.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task Create_ShowsTheSecretOnce_TheListNever()
    {
        var created = await _factory.ManageOkAsync(HttpMethod.Post, Hooks, new { url = _receiver.Url + "/a", events = new[] { "user.created", "signin.failed" } });
        var list = await _factory.ManageOkAsync(HttpMethod.Get, Hooks, expected: HttpStatusCode.OK);

        var secret = created["secret"]!.GetValue<string>();
        Assert.StartsWith("whsec_", secret);
        Assert.Equal(32, Convert.FromBase64String(secret["whsec_".Length..]).Length);
        Assert.Equal(_receiver.Url + "/a", created["url"]!.GetValue<string>());
        var listed = Assert.Single(list["items"]!.AsArray())!;
        Assert.Equal(created["id"]!.GetValue<string>(), listed["id"]!.GetValue<string>());
        Assert.Equal(["user.created", "signin.failed"], listed["events"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Null(listed["secret"]);
        Assert.DoesNotContain(secret["whsec_".Length..], list.ToJsonString());
        var audit = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=webhook.created", expected: HttpStatusCode.OK)).ToJsonString();
        Assert.Contains(created["id"]!.GetValue<string>(), audit);
        Assert.DoesNotContain(secret["whsec_".Length..], audit);
        // A receiver's URL may hold its own secret (chat services' incoming hooks): the log names its origin only.
        await _factory.ManageOkAsync(HttpMethod.Post, Hooks, new { url = _receiver.Url + "/services/T0/B0/hook-secret-42", events = new[] { "*" } });
        audit = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=webhook.created", expected: HttpStatusCode.OK)).ToJsonString();
        Assert.Contains(_receiver.Url, audit);
        Assert.DoesNotContain("hook-secret-42", audit);
    }

    [Fact]
    public async Task ASubscribedEvent_IsPostedSigned_OthersAreNot()
    {
        var secret = await SubscribeAsync("/a", "user.created");

        await _factory.CreateWebClientAsync(Tenant);
        var userId = await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);

        await Eventually.TrueAsync(() => !_receiver.Deliveries.IsEmpty);
        var delivery = Assert.Single(_receiver.Deliveries);
        Assert.Equal("/a", delivery.Path);
        Assert.Equal("application/json; charset=utf-8", delivery.ContentType);
        AssertSigned(secret, delivery);
        var body = JsonNode.Parse(delivery.Body)!;
        Assert.Equal("user.created", body["type"]!.GetValue<string>());
        Assert.Equal(userId, body["data"]!["userId"]!.GetValue<string>());
        Assert.Equal(delivery.Id, body["data"]!["id"]!.GetValue<string>());
        Assert.Equal(body["data"]!["time"]!.GetValue<string>(), body["timestamp"]!.GetValue<string>());
    }

    [Fact]
    public async Task Star_DeliversSignInsToo()
    {
        var secret = await SubscribeAsync("/all", "*");
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);

        using var browser = _factory.CreateBrowser();
        await new SignInPage(browser, Tenant).PostAsync("ada@acme.test", "not the password");

        // Its own creation is the first event it gets. Deliveries run side by side: they may arrive in any order.
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count >= 3);
        var types = _receiver.Deliveries.OrderBy(d => long.Parse(d.Id!)).Select(d => JsonNode.Parse(d.Body)!["type"]!.GetValue<string>()).ToList();
        Assert.Equal(["webhook.created", "user.created", "signin.failed"], types);
        Assert.All(_receiver.Deliveries, d => AssertSigned(secret, d));
        Assert.DoesNotContain("not the password", string.Join("", _receiver.Deliveries.Select(d => d.Body)));
    }

    [Fact]
    public async Task AFailedDelivery_IsTriedAgainLater_WithTheSameId()
    {
        var secret = await SubscribeAsync("/flaky", "user.created");
        _receiver.Statuses.Enqueue(HttpStatusCode.InternalServerError);

        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count == 1);
        _factory.Time.Advance(TimeSpan.FromSeconds(4));
        await Task.Delay(200);
        Assert.Single(_receiver.Deliveries);
        _factory.Time.Advance(TimeSpan.FromSeconds(1));
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count == 2);
        // The clock jumps only once the attempt is recorded: an attempt still under way after its hold (a minute) is
        // taken for one a stopped replica left, and made again.
        await DeliveryAsync(await HookIdAsync("/flaky"), d => d["status"]!.GetValue<string>() == "delivered");
        _factory.Time.Advance(TimeSpan.FromHours(8));
        await Task.Delay(200);

        var deliveries = _receiver.Deliveries.ToList();
        Assert.Equal(2, deliveries.Count);
        Assert.Equal(deliveries[0].Id, deliveries[1].Id);
        Assert.Equal(deliveries[0].Body, deliveries[1].Body);
        Assert.NotEqual(deliveries[0].Timestamp, deliveries[1].Timestamp);
        Assert.All(deliveries, d => AssertSigned(secret, d));
    }

    [Fact]
    public async Task EachDelivery_IsListedWithItsOutcome_AndAFailedOneCanBeSentAgain()
    {
        await SubscribeAsync("/down", "user.created");
        var hook = await HookIdAsync("/down");
        foreach (var _ in Enumerable.Range(0, WebhookDispatcher.Retries.Length + 1))
        {
            _receiver.Statuses.Enqueue(HttpStatusCode.ServiceUnavailable);
        }

        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count == 1);
        var pending = await DeliveryAsync(hook, d => d["attempts"]!.GetValue<int>() == 1);
        Assert.Equal("pending", pending["status"]!.GetValue<string>());
        Assert.Equal(503, pending["lastStatus"]!.GetValue<int>());
        Assert.Equal(_receiver.Deliveries.First().Id, pending["eventId"]!.GetValue<string>());
        Assert.Equal("user.created", pending["eventType"]!.GetValue<string>());
        Assert.NotNull(pending["nextAttemptAt"]);
        // Being tried: it cannot be sent again now.
        var busy = await _factory.ManageAsync(HttpMethod.Post, $"{Hooks}/{hook}/deliveries/{pending["eventId"]}/retry");
        Assert.Equal(HttpStatusCode.Conflict, busy.StatusCode);

        // Every retry fails: the delivery is failed, with what the endpoint answered.
        for (var i = 0; i < WebhookDispatcher.Retries.Length && _receiver.Deliveries.Count <= WebhookDispatcher.Retries.Length; i++)
        {
            var count = _receiver.Deliveries.Count;
            // Only once the last attempt is recorded: one still under way past its hold would be taken over and made again.
            await DeliveryAsync(hook, d => d["attempts"]!.GetValue<int>() == count);
            _factory.Time.Advance(WebhookDispatcher.Retries[i]);
            await Eventually.TrueAsync(() => _receiver.Deliveries.Count == count + 1);
        }

        var failed = await DeliveryAsync(hook, d => d["status"]!.GetValue<string>() == "failed");
        Assert.Equal(WebhookDispatcher.Retries.Length + 1, failed["attempts"]!.GetValue<int>());
        Assert.Equal("The endpoint answered 503.", failed["lastError"]!.GetValue<string>());
        Assert.Null(failed["nextAttemptAt"]);
        var listed = await _factory.ManageOkAsync(HttpMethod.Get, $"{Hooks}/{hook}/deliveries?status=failed", expected: HttpStatusCode.OK);
        Assert.Single(listed["items"]!.AsArray());
        Assert.Empty((await _factory.ManageOkAsync(HttpMethod.Get, $"{Hooks}/{hook}/deliveries?status=delivered", expected: HttpStatusCode.OK))["items"]!.AsArray());

        // The endpoint is back: an admin sends it again, once, with the same webhook-id.
        var again = await _factory.ManageOkAsync(HttpMethod.Post, $"{Hooks}/{hook}/deliveries/{failed["eventId"]}/retry", expected: HttpStatusCode.Accepted);
        Assert.Equal("pending", again["status"]!.GetValue<string>());
        var delivered = await DeliveryAsync(hook, d => d["status"]!.GetValue<string>() == "delivered");
        Assert.Equal(WebhookDispatcher.Retries.Length + 2, delivered["attempts"]!.GetValue<int>());
        Assert.Equal(204, delivered["lastStatus"]!.GetValue<int>());
        Assert.NotNull(delivered["deliveredAt"]);
        Assert.Equal([failed["eventId"]!.GetValue<string>()], _receiver.Deliveries.Select(d => d.Id).Distinct());
        var audit = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=webhook.redelivered", expected: HttpStatusCode.OK);
        Assert.Equal(failed["eventId"]!.GetValue<string>(), Assert.Single(audit["items"]!.AsArray())!["details"]!["eventId"]!.GetValue<string>());

        // The log keeps a month of outcomes.
        _factory.Time.Advance(TimeSpan.FromDays(31));
        await _factory.Services.GetRequiredService<IdentityService.Data.Pruning>().PruneAsync(CancellationToken.None);
        Assert.Empty((await _factory.ManageOkAsync(HttpMethod.Get, $"{Hooks}/{hook}/deliveries", expected: HttpStatusCode.OK))["items"]!.AsArray());
    }

    [Fact]
    public async Task AdminsSendingADeliveryAgainAtOnce_SendItOnce()
    {
        await SubscribeAsync("/a", "user.created");
        var hook = await HookIdAsync("/a");
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        var delivered = await DeliveryAsync(hook, d => d["status"]!.GetValue<string>() == "delivered");
        _receiver.Delay = TimeSpan.FromMilliseconds(500);

        // Two admins (or one impatient one) press "send again" at the same moment, several times.
        var token = await _factory.AdminTokenAsync();
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            _factory.ManageAsync(HttpMethod.Post, $"{Hooks}/{hook}/deliveries/{delivered["eventId"]}/retry", token: token)));

        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.Accepted);
        Assert.All(answers.Where(a => a.StatusCode != HttpStatusCode.Accepted), a => Assert.Equal(HttpStatusCode.Conflict, a.StatusCode));
        var again = await DeliveryAsync(hook, d => d["attempts"]!.GetValue<int>() >= 2 && d["status"]!.GetValue<string>() == "delivered");
        await Task.Delay(300);
        Assert.Equal(2, _receiver.Deliveries.Count);
        Assert.Equal(2, again["attempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task ARetry_OutlivesTheReplicaThatWasToMakeIt()
    {
        await SubscribeAsync("/flaky", "user.created");
        var hook = await HookIdAsync("/flaky");
        _receiver.Statuses.Enqueue(HttpStatusCode.InternalServerError);
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        await DeliveryAsync(hook, d => d["attempts"]!.GetValue<int>() == 1);

        // The replica that made the first attempt stops before its retry is due; another one, on the same database, takes it over.
        await _factory.Services.GetRequiredService<WebhookDispatcher>().StopAsync(CancellationToken.None);
        using var replica = new IdentityServiceFactory(_factory) { Output = output };
        _ = replica.Services.GetRequiredService<WebhookDispatcher>();
        _factory.Time.Advance(TimeSpan.FromSeconds(30));
        await Task.Delay(200);
        Assert.Single(_receiver.Deliveries);
        await AdvanceUntilAsync(() => _receiver.Deliveries.Count == 2);
        var delivered = await DeliveryAsync(hook, d => d["status"]!.GetValue<string>() == "delivered");
        Assert.Equal(2, delivered["attempts"]!.GetValue<int>());
        Assert.Single(_receiver.Deliveries.Select(d => d.Id).Distinct());
    }

    [Fact]
    public async Task AnAttemptUnderWay_WhenTheServiceStops_IsAnsweredAndKept_NotMadeAgainByAReplica()
    {
        await SubscribeAsync("/slow", "user.created");
        var hook = await HookIdAsync("/slow");
        _receiver.Delay = TimeSpan.FromSeconds(1);
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count == 1);

        // The service stops (a deploy) while the endpoint has not answered: the stop waits for the answer and keeps it.
        await _factory.Services.GetRequiredService<WebhookDispatcher>().StopAsync(CancellationToken.None);
        var delivered = await DeliveryAsync(hook, d => d["status"]!.GetValue<string>() == "delivered");
        Assert.Equal(1, delivered["attempts"]!.GetValue<int>());

        using var replica = new IdentityServiceFactory(_factory) { Output = output };
        _ = replica.Services.GetRequiredService<WebhookDispatcher>();
        for (var i = 0; i < 3; i++)
        {
            _factory.Time.Advance(WebhookDispatcher.Hold * 2);
            await Task.Delay(100);
        }

        Assert.Single(_receiver.Deliveries);
    }

    [Fact]
    public async Task AnAttemptUnderWay_PastTheShutdownTimeout_StaysPending_AndAReplicaDeliversIt()
    {
        await SubscribeAsync("/slow", "user.created");
        var hook = await HookIdAsync("/slow");
        _receiver.Delay = TimeSpan.FromMinutes(1);
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count == 1);

        // The host's shutdown timeout is over at once (as when a process is killed): the attempt is given up unfinished.
        await _factory.Services.GetRequiredService<WebhookDispatcher>().StopAsync(new CancellationToken(canceled: true));
        var pending = await DeliveryAsync(hook, d => d["status"]!.GetValue<string>() == "pending");
        Assert.Equal(0, pending["attempts"]!.GetValue<int>());
        _receiver.Delay = TimeSpan.Zero;
        using var replica = new IdentityServiceFactory(_factory) { Output = output };
        _ = replica.Services.GetRequiredService<WebhookDispatcher>();
        await AdvanceUntilAsync(() => _receiver.Deliveries.Count == 2);

        var delivered = await DeliveryAsync(hook, d => d["status"]!.GetValue<string>() == "delivered");
        Assert.Equal(1, delivered["attempts"]!.GetValue<int>());
        Assert.Single(_receiver.Deliveries.Select(d => d.Id).Distinct());
    }

    [Fact]
    public async Task AnEventWrittenWhileNoDispatcherRuns_IsDeliveredByAReplica()
    {
        await SubscribeAsync("/a", "user.created");
        await SubscribeAsync("/b", "user.created");
        await _factory.Services.GetRequiredService<WebhookDispatcher>().StopAsync(CancellationToken.None);
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        await Task.Delay(200);
        Assert.Empty(_receiver.Deliveries);

        using var replica = new IdentityServiceFactory(_factory) { Output = output };
        _ = replica.Services.GetRequiredService<WebhookDispatcher>();
        await AdvanceUntilAsync(() => _receiver.Deliveries.Count == 2);

        Assert.Equal(["/a", "/b"], _receiver.Deliveries.Select(d => d.Path).Order());
        Assert.Single(_receiver.Deliveries.Select(d => d.Id).Distinct());
        Assert.All(_receiver.Deliveries, d => Assert.Equal("user.created", JsonNode.Parse(d.Body)!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task ReplicasTakingOverTheSameDeliveries_SendEachOnce()
    {
        await SubscribeAsync("/a", "user.created");
        await _factory.Services.GetRequiredService<WebhookDispatcher>().StopAsync(CancellationToken.None);
        for (var i = 0; i < 5; i++)
        {
            await _factory.CreateUserAsync(Tenant, $"user{i}@acme.test", Password);
        }

        // Three replicas look for deliveries left behind at the same moment (one clock), and find the same five. (The
        // race shows on PostgreSQL, where replicas run; SQLite's single writer takes the looks one after the other.)
        var replicas = Enumerable.Range(0, 3).Select(_ => new IdentityServiceFactory(_factory) { Output = output }).ToList();
        try
        {
            replicas.ForEach(r => r.Services.GetRequiredService<WebhookDispatcher>());
            await AdvanceUntilAsync(() => _receiver.Deliveries.Count >= 5);
            await Task.Delay(500);

            Assert.Equal(5, _receiver.Deliveries.Count);
            Assert.Equal(5, _receiver.Deliveries.Select(d => d.Id).Distinct().Count());
        }
        finally
        {
            replicas.ForEach(r => r.Dispose());
        }
    }

    [Fact]
    public async Task AWebhookGoneBehindTheCache_CostsNeitherTheEventNorTheOthersDelivery()
    {
        await SubscribeAsync("/gone", "user.created");
        await SubscribeAsync("/kept", "user.created");
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count == 2);

        // Deleted where this replica's cache of the tenant's webhooks does not hear of it (as by another replica without Redis).
        var gone = Guid.Parse(await HookIdAsync("/gone"));
        using (var scope = _factory.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
            await db.Set<Webhook>().IgnoreQueryFilters().Where(w => w.Id == gone).ExecuteDeleteAsync();
        }

        await _factory.CreateUserAsync(Tenant, "bob@acme.test", Password);
        await Eventually.TrueAsync(() => _receiver.Deliveries.Count(d => d.Path == "/kept") == 2);
        Assert.Single(_receiver.Deliveries, d => d.Path == "/gone");
        var created = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.created", expected: HttpStatusCode.OK);
        Assert.Equal(2, created["items"]!.AsArray().Count);
    }

    [Fact]
    public async Task AWebhookWhoseSecretCannotBeRead_CostsNotTheAuditLog()
    {
        await SubscribeAsync("/a", "user.created");
        using (var scope = _factory.Services.CreateScope())
        {
            // As after the Data Protection keys were lost.
            var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
            await db.Set<Webhook>().IgnoreQueryFilters().ExecuteUpdateAsync(s => s.SetProperty(w => w.ProtectedSecret, "not-a-protected-payload"));
        }

        await _factory.Services.GetRequiredService<IdentityService.Protection.IInvalidationBus>().PublishAsync(WebhookDispatcher.Channel, Tenant);

        var created = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/users", new { email = "ada@acme.test", password = Password });

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var logged = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.created", expected: HttpStatusCode.OK);
        Assert.Single(logged["items"]!.AsArray());
    }

    /// <summary>Moves the clock on a hold at a time (a replica's look for deliveries left behind) until the endpoint has what it expects.</summary>
    private async Task AdvanceUntilAsync(Func<bool> done)
    {
        for (var i = 0; i < 5 && !done(); i++)
        {
            _factory.Time.Advance(WebhookDispatcher.Hold);
            await Task.Delay(300);
        }

        await Eventually.TrueAsync(done);
    }

    [Fact]
    public async Task ADeletedWebhook_GetsNothingMore()
    {
        await SubscribeAsync("/gone", "user.created");
        await SubscribeAsync("/kept", "user.created");
        var gone = (await _factory.ManageOkAsync(HttpMethod.Get, Hooks, expected: HttpStatusCode.OK))["items"]!.AsArray()
            .Single(h => h!["url"]!.GetValue<string>().EndsWith("/gone"))!["id"]!.GetValue<string>();

        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, $"{Hooks}/{gone}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Delete, $"{Hooks}/{gone}")).StatusCode);
        await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password);
        await _factory.CreateUserAsync(Tenant, "bob@acme.test", Password);

        await Eventually.TrueAsync(() => _receiver.Deliveries.Count(d => d.Path == "/kept") == 2);
        Assert.DoesNotContain(_receiver.Deliveries, d => d.Path == "/gone");
        Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, Hooks, expected: HttpStatusCode.OK))["items"]!.AsArray());
    }

    [Theory]
    [InlineData("ftp://hooks.example.com/x", "url")]
    [InlineData("/relative", "url")]
    [InlineData("http://user:pass@127.0.0.1/x", "url")]
    [InlineData("http://127.0.0.1/x#frag", "url")]
    [InlineData("http://127.0.0.1/x y", "url")]
    [InlineData(null, "url")]
    public async Task BadUrls_Are400(string? url, string field)
    {
        var response = await _factory.ManageAsync(HttpMethod.Post, Hooks, new { url, events = new[] { "*" } });

        await AssertNamesAsync(response, field);
    }

    [Theory]
    [InlineData("")]
    [InlineData("user.exploded")]
    [InlineData("user.created,user.created")]
    [InlineData("signin.*")]
    public async Task BadEventLists_Are400(string events)
    {
        var response = await _factory.ManageAsync(HttpMethod.Post, Hooks, new { url = _receiver.Url, events = events.Split(',', StringSplitOptions.RemoveEmptyEntries) });

        await AssertNamesAsync(response, "events");
    }

    [Fact]
    public async Task ATenantHasAtMostTwentyWebhooks()
    {
        for (var i = 0; i < WebhooksApi.MaxPerTenant; i++)
        {
            await SubscribeAsync("/" + i, "user.created");
        }

        var response = await _factory.ManageAsync(HttpMethod.Post, Hooks, new { url = _receiver.Url, events = new[] { "*" } });

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var (seen, _) = await _factory.WalkPagesAsync(Hooks, "id");
        Assert.Equal(WebhooksApi.MaxPerTenant, seen.Distinct().Count());
    }

    [Fact]
    public async Task AnotherTenantsWebhooks_AreOutOfReach()
    {
        await _factory.CreateTenantAsync("other");
        var token = await _factory.TenantAdminTokenAsync("other");

        var list = await _factory.ManageAsync(HttpMethod.Get, Hooks, token: token);
        var create = await _factory.ManageAsync(HttpMethod.Post, Hooks, new { url = _receiver.Url, events = new[] { "*" } }, token);

        var deliveries = await _factory.ManageAsync(HttpMethod.Get, $"{Hooks}/{Guid.NewGuid()}/deliveries", token: token);

        Assert.Equal(HttpStatusCode.Forbidden, list.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, create.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, deliveries.StatusCode);
    }

    [Theory]
    [InlineData("http://hooks.example.com/x")]
    [InlineData("https://127.0.0.1/x")]
    [InlineData("https://10.1.2.3/x")]
    [InlineData("https://169.254.169.254/latest/meta-data")]
    [InlineData("https://[::1]/x")]
    [InlineData("https://[fd00::1]/x")]
    [InlineData("https://localhost/x")]
    [InlineData("https://api.localhost/x")]
    public async Task OutsideDevelopment_OnlyHttpsToPublicAddresses(string url)
    {
        using var factory = new IdentityServiceFactory { Output = output, Environment = "Production", Settings = { ["Issuer:PublicOrigin"] = "https://id.example.test" } };
        factory.ClientOptions.BaseAddress = new Uri("https://id.example.test");
        await factory.CreateTenantAsync(Tenant);

        var refused = await factory.ManageAsync(HttpMethod.Post, Hooks, new { url, events = new[] { "*" } });
        var accepted = await factory.ManageAsync(HttpMethod.Post, Hooks, new { url = "https://hooks.example.com/identity", events = new[] { "*" } });

        await AssertNamesAsync(refused, "url");
        Assert.Equal(HttpStatusCode.Created, accepted.StatusCode);
    }

    [Fact]
    public async Task OutsideDevelopment_AProxyOfTheMachine_DoesNotCarryTenantsRequestsPastTheAddressCheck()
    {
        using var factory = new IdentityServiceFactory { Output = output, Environment = "Production", Settings = { ["Issuer:PublicOrigin"] = "https://id.example.test" } };
        factory.ClientOptions.BaseAddress = new Uri("https://id.example.test");
        _ = factory.Server;
        var handler = WebhooksSetup.OutboundHandler(factory.Services);
        // What HTTPS_PROXY on the machine would give every client: through it, only the proxy's address was checked.
        handler.Proxy = new WebProxy("http://127.0.0.1:9");
        using var client = new HttpClient(handler);

        var refused = await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync("https://169.254.169.254/latest/meta-data/"));
        var unknown = await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync("https://no-such-host.invalid/hook"));

        // Refused by the address check, and in the same words as a name that does not resolve (an admin reading a
        // delivery's error cannot tell the platform's internal names that exist from those that do not).
        Assert.StartsWith("The host 169.254.169.254 cannot be reached at a public address.", refused.Message);
        Assert.StartsWith("The host no-such-host.invalid cannot be reached at a public address.", unknown.Message);
    }

    [Theory]
    [InlineData("93.184.216.34", true)]
    [InlineData("2606:2800:220:1:248:1893:25c8:1946", true)]
    [InlineData("127.0.0.1", false)]
    [InlineData("10.0.0.1", false)]
    [InlineData("172.16.0.1", false)]
    [InlineData("172.31.255.255", false)]
    [InlineData("172.32.0.1", true)]
    [InlineData("192.168.1.1", false)]
    [InlineData("169.254.169.254", false)]
    [InlineData("100.64.0.1", false)]
    [InlineData("0.0.0.0", false)]
    [InlineData("224.0.0.1", false)]
    [InlineData("::1", false)]
    [InlineData("::", false)]
    [InlineData("fe80::1", false)]
    [InlineData("fd12:3456::1", false)]
    [InlineData("::ffff:10.0.0.1", false)]
    [InlineData("::ffff:93.184.216.34", true)]
    [InlineData("64:ff9b::a00:1", false)]
    [InlineData("::127.0.0.1", false)]
    [InlineData("::169.254.169.254", false)]
    [InlineData("::ffff:0:a00:1", false)]
    [InlineData("2002:a00:1::1", false)]
    public void OnlyPublicAddresses_AreConnectedTo(string address, bool isPublic) =>
        Assert.Equal(isPublic, IdentityService.Protection.PublicAddresses.IsPublic(IPAddress.Parse(address)));

    private async Task<string> HookIdAsync(string path) =>
        (await _factory.ManageOkAsync(HttpMethod.Get, Hooks, expected: HttpStatusCode.OK))["items"]!.AsArray()
            .Single(h => h!["url"]!.GetValue<string>().EndsWith(path, StringComparison.Ordinal))!["id"]!.GetValue<string>();

    /// <summary>The webhook's only delivery, once it is as <paramref name="ready"/> says.</summary>
    private async Task<JsonNode> DeliveryAsync(string hook, Func<JsonNode, bool> ready)
    {
        JsonNode? found = null;
        await Eventually.TrueAsync(async () =>
        {
            var items = (await _factory.ManageOkAsync(HttpMethod.Get, $"{Hooks}/{hook}/deliveries", expected: HttpStatusCode.OK))["items"]!.AsArray();
            found = items.Count == 1 && ready(items[0]!) ? items[0] : null;
            return found is not null;
        });
        return found!;
    }

    private async Task<string> SubscribeAsync(string path, params string[] events)
    {
        var created = await _factory.ManageOkAsync(HttpMethod.Post, Hooks, new { url = _receiver.Url + path, events });
        return created["secret"]!.GetValue<string>();
    }

    /// <summary>Checks a delivery's signature as a receiver would, from the Standard Webhooks specification.</summary>
    private static void AssertSigned(string secret, WebhookReceiver.Delivery delivery)
    {
        Assert.NotNull(delivery.Id);
        var timestamp = long.Parse(delivery.Timestamp!);
        var key = Convert.FromBase64String(secret["whsec_".Length..]);
        var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{delivery.Id}.{timestamp}.{delivery.Body}")));
        Assert.Contains(expected, delivery.Signature!.Split(' '));
    }

    private static async Task AssertNamesAsync(HttpResponseMessage response, string field)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, text);
        Assert.NotNull(JsonNode.Parse(text)!["errors"]![field]);
    }
}
