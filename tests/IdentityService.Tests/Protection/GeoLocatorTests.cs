using System.Net;
using IdentityService.Protection;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace IdentityService.Tests.Protection;

/// <summary>The service's reader of IP-to-country files, on both formats it supports.</summary>
public sealed class GeoLocatorTests
{
    [Fact]
    public void IpLocationDbFile_CountryCodeRecords_AreRead()
    {
        using var locator = Locator(GeoIpTestData.DatabasePath);
        foreach (var country in new[] { "FR", "US", "DE", "JP" })
        {
            var address = GeoIpTestData.AddressIn(country);
            Assert.Equal(country, locator.Country(address));
            Assert.Equal(country, locator.Country(address.MapToIPv6()));
        }

        Assert.Null(locator.Country(IPAddress.Parse("10.0.0.1")));
        Assert.Null(locator.Country(IPAddress.Loopback));
    }

    [Theory]
    [InlineData("GeoLite2-Country")]
    [InlineData("GeoIP2-Country")]
    [InlineData("GeoLite2-City")]
    [InlineData("GeoIP2-City")]
    public void MaxMindFiles_CountryIsoCode_IsRead(string databaseType)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{databaseType}-{Guid.NewGuid():N}.mmdb");
        new MmdbWriter(databaseType)
            .Add("203.0.113.0/24", new Dictionary<string, object> { ["country"] = new Dictionary<string, object> { ["iso_code"] = "FR" } })
            .Add("192.0.2.128/25", new Dictionary<string, object> { ["country"] = new Dictionary<string, object> { ["iso_code"] = "DE" } })
            .Write(path);
        try
        {
            using var locator = Locator(path);
            Assert.Equal("FR", locator.Country(IPAddress.Parse("203.0.113.77")));
            Assert.Equal("DE", locator.Country(IPAddress.Parse("192.0.2.200")));
            Assert.Null(locator.Country(IPAddress.Parse("192.0.2.100")));
            Assert.Null(locator.Country(IPAddress.Parse("10.0.0.1")));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MaxMindFileWithoutCountries_StopsTheStart()
    {
        var path = Path.Combine(Path.GetTempPath(), $"asn-{Guid.NewGuid():N}.mmdb");
        new MmdbWriter("GeoLite2-ASN").Add("203.0.113.0/24", new Dictionary<string, object> { ["autonomous_system_number"] = 64496u }).Write(path);
        try
        {
            var error = Assert.Throws<OptionsValidationException>(() => Locator(path));
            Assert.Contains("GeoIp:DatabasePath", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void NoDatabase_EveryCountryIsUnknown()
    {
        using var locator = Locator(null);
        Assert.Null(locator.Country(IPAddress.Parse("203.0.113.77")));
    }

    private static MaxMindGeoLocator Locator(string? path) =>
        new(Options.Create(new GeoIpOptions { DatabasePath = path }), NullLogger<MaxMindGeoLocator>.Instance);
}
