using System.Net;
using System.Text.Json.Nodes;
using IdentityService.Protection;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Pipeline;

public sealed class IpProtectionTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task FiveUnknownEmailFailures_BlockTheIpForThirtyMinutes_ListedAndLiftableByTheAdmin()
    {
        using var browser = _factory.CreateBrowser();
        var page = new SignInPage(browser, "acme");
        for (var i = 0; i < 5; i++)
        {
            Assert.True((await page.PostAsync($"ghost{i}@acme.test", "whatever", ip: "198.51.100.7")).Refused);
        }

        // Blocked: even a real account with its right password is refused from there, with the same message.
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "198.51.100.7")).Refused);
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "198.51.100.8")).SignedIn);

        var blocks = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/ip-blocks", expected: HttpStatusCode.OK);
        var block = Assert.Single(blocks["items"]!.AsArray());
        Assert.Equal("198.51.100.7", block!["ip"]!.GetValue<string>());
        Assert.Equal("unknown_user_failures", block["reason"]!.GetValue<string>());

        _factory.Time.Advance(TimeSpan.FromMinutes(29));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password, ip: "198.51.100.7")).Refused);
        _factory.Time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password, ip: "198.51.100.7")).SignedIn);
        Assert.Empty((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/ip-blocks", expected: HttpStatusCode.OK))["items"]!.AsArray());
    }

    [Fact]
    public async Task IpBlocks_AreListedPageByPage_AndBadPagingIs400()
    {
        var store = _factory.Services.GetRequiredService<IProtectionStore>();
        var until = _factory.Time.GetUtcNow().AddMinutes(30);
        string[] ips = ["198.51.100.3", "2001:db8::1", "198.51.100.1", "203.0.113.9", "198.51.100.2"];
        foreach (var ip in ips)
        {
            await store.BlockAsync("acme", ip, until, "unknown_user_failures");
        }

        var (seen, pageSizes) = await _factory.WalkPagesAsync("/api/v1/tenants/acme/ip-blocks", "ip");

        Assert.Equal(3, pageSizes.Count);
        Assert.Equal(ips.Order(StringComparer.Ordinal), seen);
        Assert.Equal(HttpStatusCode.BadRequest, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/ip-blocks?limit=-1")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/ip-blocks?cursor=%25%25")).StatusCode);
    }

    [Fact]
    public async Task AdminLiftsABlock_TheIpSignsInAgain()
    {
        var page = new SignInPage(_factory.CreateBrowser(), "acme");
        for (var i = 0; i < 5; i++)
        {
            await page.PostAsync($"ghost{i}@acme.test", "whatever", ip: "2001:db8::7");
        }

        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "2001:db8::7")).Refused);
        var lifted = await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme/ip-blocks/" + Uri.EscapeDataString("2001:db8::7"));
        Assert.Equal(HttpStatusCode.NoContent, lifted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme/ip-blocks/2001:db8::7")).StatusCode);
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "2001:db8::7")).SignedIn);
    }

    [Fact]
    public async Task AnIpv6HostChangingItsAddressWithinItsSlash64_IsCountedAndBlockedAsOne()
    {
        var page = new SignInPage(_factory.CreateBrowser(), "acme");
        for (var i = 0; i < 5; i++)
        {
            // A fresh address for every attempt, as a host with a routed /64 can take.
            Assert.True((await page.PostAsync($"ghost{i}@acme.test", "whatever", ip: $"2001:db8:1:2::{i + 10:x}")).Refused);
        }

        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "2001:db8:1:2:ffff::1")).Refused);
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "2001:db8:1:3::1")).SignedIn);

        var block = Assert.Single((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/ip-blocks", expected: HttpStatusCode.OK))["items"]!.AsArray());
        Assert.Equal("2001:db8:1:2::/64", block!["ip"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NoContent, (await _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme/ip-blocks/" + Uri.EscapeDataString("2001:db8:1:2::/64"))).StatusCode);
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "2001:db8:1:2::10")).SignedIn);

        // The rate limit too: past it from one /64, another address in it is refused, another /64 is not.
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { signInPerIpPerMinute = 3 } }, HttpStatusCode.OK);
        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        for (var i = 0; i < 3; i++)
        {
            await page.PostAsync("ada@acme.test", "wrong password", ip: $"2001:db8:5:6::{i + 1:x}");
        }

        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "2001:db8:5:6::99")).Refused);
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "2001:db8:5:7::99")).SignedIn);
    }

    [Fact]
    public async Task ManyDistinctEmailsFromOneIp_AreCredentialStuffing_AndBlockIt()
    {
        for (var i = 0; i < 6; i++)
        {
            await _factory.CreateUserAsync("acme", $"user{i}@acme.test", Password);
        }

        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { ipBlocking = new { distinctUsernames = 5 } }, HttpStatusCode.OK);
        var page = new SignInPage(_factory.CreateBrowser(), "acme");
        for (var i = 0; i < 5; i++)
        {
            await page.PostAsync($"user{i}@acme.test", "leaked password", ip: "198.51.100.99");
        }

        Assert.True((await page.PostAsync("user5@acme.test", Password, ip: "198.51.100.99")).Refused);
        var events = await _factory.SignInEventsAsync("acme");
        Assert.Equal("ip_blocked", events[^1].Reason);
        Assert.Equal("CheckIpBlock", events[^1].DecidedBy);
    }

    [Theory]
    [InlineData("198.51.100.0/24", "198.51.100.200")]
    [InlineData("2001:db8:1::/48", "2001:db8:1:2::5")]
    [InlineData("203.0.113.5", "203.0.113.5")]
    public async Task DenyList_RefusesAddressesInItsRanges(string range, string address)
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { ipRules = new { deny = new[] { range } } }, HttpStatusCode.OK);

        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password, ip: address)).Refused);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password, ip: "192.0.2.1")).SignedIn);
        Assert.Equal("ip_denied", (await _factory.SignInEventsAsync("acme"))[0].Reason);
    }

    [Fact]
    public async Task AllowList_LetsAnAddressPastABlock()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { ipRules = new { allow = new[] { "192.0.2.0/24" } } }, HttpStatusCode.OK);
        var page = new SignInPage(_factory.CreateBrowser(), "acme");
        for (var i = 0; i < 8; i++)
        {
            await page.PostAsync($"ghost{i}@acme.test", "whatever", ip: "192.0.2.10");
        }

        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "192.0.2.10")).SignedIn);
    }

    [Fact]
    public async Task SignInRateLimit_RefusesPastTheLimit_WithoutCheckingThePassword()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { rateLimits = new { signInPerIpPerMinute = 3 } }, HttpStatusCode.OK);
        var page = new SignInPage(_factory.CreateBrowser(), "acme");
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await page.PostAsync("ada@acme.test", "wrong", ip: "198.51.100.3")).Refused);
        }

        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "198.51.100.3")).Refused);
        var last = (await _factory.SignInEventsAsync("acme"))[^1];
        Assert.Equal("rate_limited", last.Reason);
        Assert.DoesNotContain("VerifyPassword", last.Trace);

        _factory.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "198.51.100.3")).SignedIn);
    }

    [Fact]
    public async Task ForwardedFor_IsBelievedOnlyFromAKnownProxy()
    {
        using var factory = new IdentityServiceFactory { Output = output, Settings = { ["ForwardedHeaders:KnownProxies:0"] = "10.9.9.9" } };
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", Password);
        await factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { ipRules = new { deny = new[] { "198.51.100.0/24" } } }, HttpStatusCode.OK);
        var forwarded = new Dictionary<string, string> { ["X-Forwarded-For"] = "198.51.100.20" };

        var viaProxy = await new SignInPage(factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password, ip: "10.9.9.9", headers: forwarded);
        var direct = await new SignInPage(factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password, ip: "192.0.2.50", headers: forwarded);

        Assert.True(viaProxy.Refused, "the proxy says the client is 198.51.100.20, which is denied");
        Assert.True(direct.SignedIn, "anyone else's X-Forwarded-For is ignored");
        var events = await factory.SignInEventsAsync("acme");
        Assert.Equal("198.51.100.20", events[0].Ip);
        Assert.Equal("192.0.2.50", events[1].Ip);
    }
}
