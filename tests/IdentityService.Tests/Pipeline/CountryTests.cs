using System.Net;
using IdentityService.SignIn.Pages;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Pipeline;

/// <summary>
/// The tenant's country allow-list through the real sign-in page, on the IP-to-country database the suite
/// fetches (<see cref="GeoIpTestData"/>). Test addresses come from that file, never from real-world knowledge.
/// </summary>
public sealed class CountryTests : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";
    private const string Proxy = "10.9.9.9";

    private readonly IdentityServiceFactory _factory = new();
    private readonly string _fr = GeoIpTestData.AddressIn("FR").ToString();
    private readonly string _us = GeoIpTestData.AddressIn("US").ToString();

    public CountryTests(ITestOutputHelper output)
    {
        _factory.Output = output;
        _factory.Settings["GeoIp:DatabasePath"] = GeoIpTestData.DatabasePath;
        _factory.Settings["ForwardedHeaders:KnownProxies:0"] = Proxy;
    }

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync(Tenant);
        await _factory.CreateWebClientAsync(Tenant);
        await _factory.CreateUserAsync(Tenant, Email, Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public void TestAddresses_AreWhatTheDatabaseFileSays()
    {
        Assert.Equal("FR", GeoIpTestData.CountryInFile(IPAddress.Parse(_fr)));
        Assert.Equal("US", GeoIpTestData.CountryInFile(IPAddress.Parse(_us)));
        Assert.Null(GeoIpTestData.CountryInFile(IPAddress.Parse("10.0.0.1")));
    }

    [Fact]
    public async Task AllowedCountry_SignsIn()
    {
        await _factory.PatchPolicyAsync(Tenant, new { countries = new { allowed = new[] { "FR" } } });

        using var browser = _factory.CreateBrowserFrom(_fr);
        await new OidcFlow(browser, Tenant, "web").SignInAsync(Email, Password);

        var attempt = Assert.Single(await _factory.SignInEventsAsync(Tenant));
        Assert.Equal("succeeded", attempt.Outcome);
        Assert.Equal(_fr, attempt.Ip);
        Assert.Equal("FR", attempt.Country);
        Assert.Contains("\"step\":\"CheckCountry\"", attempt.Trace);
    }

    [Fact]
    public async Task OtherCountry_IsRefusedWithTheGenericMessage_AndTheLogSaysWhy()
    {
        await _factory.PatchPolicyAsync(Tenant, new { countries = new { allowed = new[] { "FR" } } });

        using var browser = _factory.CreateBrowserFrom(_us);
        var refused = await Assert.ThrowsAsync<SignInRefusedException>(() => new OidcFlow(browser, Tenant, "web").GetCodeAsync(Email, Password));
        Assert.Contains(LoginModel.RefusedMessage, WebUtility.HtmlDecode(refused.Page));

        var attempt = Assert.Single(await _factory.SignInEventsAsync(Tenant));
        Assert.Equal("failed", attempt.Outcome);
        Assert.Equal("country_not_allowed", attempt.Reason);
        Assert.Equal("CheckCountry", attempt.DecidedBy);
        Assert.Equal("US", attempt.Country);
    }

    [Fact]
    public async Task EmptyAllowList_LetsEveryCountryIn()
    {
        using var browser = _factory.CreateBrowserFrom(_us);
        await new OidcFlow(browser, Tenant, "web").SignInAsync(Email, Password);

        var attempt = Assert.Single(await _factory.SignInEventsAsync(Tenant));
        Assert.Equal("succeeded", attempt.Outcome);
        Assert.DoesNotContain("CheckCountry", attempt.Trace);
    }

    [Fact]
    public async Task PrivateAddress_WhenUnknownAllow_SignsIn()
    {
        await _factory.PatchPolicyAsync(Tenant, new { countries = new { allowed = new[] { "FR" }, whenUnknown = "allow" } });

        using var browser = _factory.CreateBrowserFrom("10.0.0.1");
        await new OidcFlow(browser, Tenant, "web").SignInAsync(Email, Password);

        var attempt = Assert.Single(await _factory.SignInEventsAsync(Tenant));
        Assert.Equal("succeeded", attempt.Outcome);
        Assert.Null(attempt.Country);
        Assert.Contains("country unknown, allowed by policy", attempt.Trace);
    }

    [Fact]
    public async Task PrivateAddress_WhenUnknownDeny_IsRefused()
    {
        await _factory.PatchPolicyAsync(Tenant, new { countries = new { allowed = new[] { "FR" }, whenUnknown = "deny" } });

        using var browser = _factory.CreateBrowserFrom("10.0.0.1");
        var refused = await Assert.ThrowsAsync<SignInRefusedException>(() => new OidcFlow(browser, Tenant, "web").GetCodeAsync(Email, Password));
        Assert.Contains(LoginModel.RefusedMessage, WebUtility.HtmlDecode(refused.Page));

        var attempt = Assert.Single(await _factory.SignInEventsAsync(Tenant));
        Assert.Equal("failed", attempt.Outcome);
        Assert.Equal("country_unknown", attempt.Reason);
        Assert.Equal("CheckCountry", attempt.DecidedBy);
        Assert.Equal("10.0.0.1", attempt.Ip);
        Assert.Null(attempt.Country);
    }

    [Fact]
    public async Task ForwardedFor_FromAKnownProxy_IsTheClientAddress()
    {
        await _factory.PatchPolicyAsync(Tenant, new { countries = new { allowed = new[] { "FR" }, whenUnknown = "deny" } });

        using (var browser = _factory.CreateBrowserFrom(Proxy))
        {
            browser.DefaultRequestHeaders.Add("X-Forwarded-For", _fr);
            await new OidcFlow(browser, Tenant, "web").SignInAsync(Email, Password);
        }

        using (var browser = _factory.CreateBrowserFrom(Proxy))
        {
            browser.DefaultRequestHeaders.Add("X-Forwarded-For", _us);
            await Assert.ThrowsAsync<SignInRefusedException>(() => new OidcFlow(browser, Tenant, "web").GetCodeAsync(Email, Password));
        }

        var attempts = await _factory.SignInEventsAsync(Tenant);
        Assert.Equal(2, attempts.Count);
        var fromFrance = Assert.Single(attempts, a => a.Ip == _fr);
        Assert.Equal(("succeeded", "FR"), (fromFrance.Outcome, fromFrance.Country));
        var fromUs = Assert.Single(attempts, a => a.Ip == _us);
        Assert.Equal(("failed", "country_not_allowed", "US"), (fromUs.Outcome, fromUs.Reason, fromUs.Country));
    }

    [Fact]
    public async Task ForwardedFor_FromAnUnknownConnection_IsIgnored()
    {
        const string stranger = "198.51.100.7";
        await _factory.PatchPolicyAsync(Tenant, new { countries = new { allowed = new[] { "FR" }, whenUnknown = "deny" } });
        Assert.NotEqual("FR", GeoIpTestData.CountryInFile(IPAddress.Parse(stranger)));

        using var browser = _factory.CreateBrowserFrom(stranger);
        browser.DefaultRequestHeaders.Add("X-Forwarded-For", _fr);
        var refused = await Assert.ThrowsAsync<SignInRefusedException>(() => new OidcFlow(browser, Tenant, "web").GetCodeAsync(Email, Password));
        Assert.Contains(LoginModel.RefusedMessage, WebUtility.HtmlDecode(refused.Page));

        var attempt = Assert.Single(await _factory.SignInEventsAsync(Tenant));
        Assert.Equal(stranger, attempt.Ip);
        Assert.Equal("CheckCountry", attempt.DecidedBy);
        Assert.Equal(GeoIpTestData.CountryInFile(IPAddress.Parse(stranger)), attempt.Country);
    }

    [Fact]
    public async Task MaxMindsOwnCountryFormat_IsRead()
    {
        var path = Path.Combine(Path.GetTempPath(), $"geolite2-country-{Guid.NewGuid():N}.mmdb");
        new MmdbWriter("GeoLite2-Country")
            .Add("203.0.113.0/24", Country("FR"))
            .Add("192.0.2.0/24", Country("US"))
            .Write(path);
        try
        {
            using var factory = new IdentityServiceFactory { Output = _factory.Output };
            factory.Settings["GeoIp:DatabasePath"] = path;
            await factory.CreateTenantAsync(Tenant);
            await factory.CreateWebClientAsync(Tenant);
            await factory.CreateUserAsync(Tenant, Email, Password);
            await factory.PatchPolicyAsync(Tenant, new { countries = new { allowed = new[] { "FR" } } });

            using (var browser = factory.CreateBrowserFrom("203.0.113.10"))
            {
                await new OidcFlow(browser, Tenant, "web").SignInAsync(Email, Password);
            }

            using (var browser = factory.CreateBrowserFrom("192.0.2.10"))
            {
                await Assert.ThrowsAsync<SignInRefusedException>(() => new OidcFlow(browser, Tenant, "web").GetCodeAsync(Email, Password));
            }

            var attempts = await factory.SignInEventsAsync(Tenant);
            Assert.Equal(("succeeded", "FR"), attempts.Where(a => a.Ip == "203.0.113.10").Select(a => (a.Outcome, a.Country)).Single());
            Assert.Equal(("country_not_allowed", "US"), attempts.Where(a => a.Ip == "192.0.2.10").Select(a => (a.Reason, a.Country)).Single());
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static Dictionary<string, object> Country(string isoCode) =>
        new() { ["country"] = new Dictionary<string, object> { ["iso_code"] = isoCode, ["geoname_id"] = 3017382u } };
}
