using System.Net;
using MaxMind.Db;
using MaxMind.GeoIP2;
using Microsoft.Extensions.Options;

namespace IdentityService.Protection;

/// <summary>The <c>GeoIp</c> section.</summary>
public sealed class GeoIpOptions
{
    public const string Section = "GeoIp";

    /// <summary>
    /// A MaxMind-format <c>.mmdb</c> file: MaxMind's GeoLite2/GeoIP2 Country or City, or a country database of the
    /// <c>@ip-location-db</c> packages (records with <c>country_code</c>). Unset: every country is unknown.
    /// </summary>
    public string? DatabasePath { get; set; }
}

/// <summary>IP address to ISO 3166-1 alpha-2 country.</summary>
public interface IGeoLocator
{
    /// <summary>The country of the address, or null when unknown (a private address, or no database).</summary>
    string? Country(IPAddress address);
}

/// <summary>
/// Reads MaxMind-format databases. MaxMind's own files go through MaxMind.GeoIP2's typed reader; the
/// ip-location-db files, whose records hold only <c>country_code</c> (which that reader refuses), through
/// MaxMind.Db with a small record type.
/// </summary>
internal sealed class MaxMindGeoLocator : IGeoLocator, IDisposable
{
    private readonly DatabaseReader? _geoIp2;
    private readonly string? _geoIp2Kind;
    private readonly Reader? _plain;

    public MaxMindGeoLocator(IOptions<GeoIpOptions> options, ILogger<MaxMindGeoLocator> logger)
    {
        var path = options.Value.DatabasePath;
        if (string.IsNullOrEmpty(path))
        {
            return;
        }

        if (!File.Exists(path))
        {
            throw new OptionsValidationException(GeoIpOptions.Section, typeof(GeoIpOptions), [$"GeoIp:DatabasePath: no file at '{path}'."]);
        }

        var reader = new Reader(path, FileAccessMode.MemoryMapped);
        if (reader.Metadata.DatabaseType.Contains("GeoIP2", StringComparison.OrdinalIgnoreCase)
            || reader.Metadata.DatabaseType.Contains("GeoLite2", StringComparison.OrdinalIgnoreCase))
        {
            reader.Dispose();

            // GeoIP2's typed reader answers only the lookup of the file's own kind: Country() refuses a City file.
            _geoIp2Kind = new[] { "Country", "City", "Enterprise" }.FirstOrDefault(kind => reader.Metadata.DatabaseType.Contains(kind, StringComparison.Ordinal))
                ?? throw new OptionsValidationException(GeoIpOptions.Section, typeof(GeoIpOptions),
                    [$"GeoIp:DatabasePath: '{path}' is a {reader.Metadata.DatabaseType} database, not a Country, City or Enterprise one."]);
            _geoIp2 = new DatabaseReader(path, FileAccessMode.MemoryMapped);
        }
        else
        {
            _plain = reader;
        }

        logger.LogInformation("IP-to-country database {Path} ({Type}, built {Built:yyyy-MM-dd}).", path, reader.Metadata.DatabaseType, reader.Metadata.BuildDate);
    }

    public string? Country(IPAddress address)
    {
        // ::ffff:a.b.c.d is the IPv4 address: IPv6 trees need not alias it.
        address = IpRanges.Normalize(address);
        try
        {
            if (_geoIp2 is not null)
            {
                return _geoIp2Kind switch
                {
                    "City" => _geoIp2.TryCity(address, out var city) ? city?.Country.IsoCode : null,
                    "Enterprise" => _geoIp2.TryEnterprise(address, out var enterprise) ? enterprise?.Country.IsoCode : null,
                    _ => _geoIp2.TryCountry(address, out var country) ? country?.Country.IsoCode : null,
                };
            }

            return _plain?.Find<CountryCodeRecord>(address)?.CountryCode?.ToUpperInvariant();
        }
        catch (InvalidDatabaseException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _geoIp2?.Dispose();
        _plain?.Dispose();
    }

    /// <summary>A record of the ip-location-db country databases.</summary>
    public sealed class CountryCodeRecord
    {
        [Constructor]
        public CountryCodeRecord([MapKey("country_code")] string? countryCode = null) => CountryCode = countryCode;

        public string? CountryCode { get; }
    }
}
