using System.Net;
using MaxMind.Db;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// The IP-to-country database the tests use (fetched by <c>scripts/fetch-geoip.sh</c>; <c>./test.sh</c> sets
/// <c>TEST_GEOIP_DB</c>), and test addresses taken from that same file: its data has known errors, so the
/// tests never assume the real-world country of an address, only what the file says.
/// </summary>
public static class GeoIpTestData
{
    public const string Variable = "TEST_GEOIP_DB";

    private static readonly Lazy<Dictionary<string, IPAddress>> Samples = new(FindSamples);

    /// <summary>The database file; fails with a clear message when the suite was not started the documented way.</summary>
    public static string DatabasePath
    {
        get
        {
            var path = Environment.GetEnvironmentVariable(Variable);
            if (string.IsNullOrEmpty(path))
            {
                throw new InvalidOperationException(
                    $"{Variable} is not set: run ./test.sh, or `export {Variable}=$(scripts/fetch-geoip.sh)` before `dotnet test`.");
            }

            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"{Variable} names '{path}', which does not exist: run scripts/fetch-geoip.sh.");
            }

            return path;
        }
    }

    /// <summary>An IPv4 address the database places in <paramref name="country"/>.</summary>
    public static IPAddress AddressIn(string country) =>
        Samples.Value.TryGetValue(country, out var address)
            ? address
            : throw new InvalidOperationException($"The database {DatabasePath} has no IPv4 network of {country}.");

    /// <summary>What the database file itself says of an address (through MaxMind.Db, apart from the service's reader).</summary>
    public static string? CountryInFile(IPAddress address)
    {
        using var reader = new Reader(DatabasePath, FileAccessMode.Memory);
        return reader.Find<Dictionary<string, object>>(address)?.GetValueOrDefault("country_code") as string;
    }

    private static readonly string[] Wanted = ["FR", "US", "DE", "JP"];

    private static Dictionary<string, IPAddress> FindSamples()
    {
        var found = new Dictionary<string, IPAddress>();
        using var reader = new Reader(DatabasePath, FileAccessMode.Memory);
        foreach (var node in reader.FindAll<Dictionary<string, object>>())
        {
            if (node.Data.GetValueOrDefault("country_code") is not string code || !Wanted.Contains(code) || found.ContainsKey(code))
            {
                continue;
            }

            // An IPv4 network, seen in an IPv6 tree as ::a.b.c.d; one address inside it, checked by a lookup.
            var start = node.Start;
            var bytes = start.GetAddressBytes();
            if (start.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                if (bytes.Take(12).Any(b => b != 0))
                {
                    continue;
                }

                bytes = bytes[12..];
            }

            bytes[3] |= 1;
            var address = new IPAddress(bytes);
            if (IPAddress.IsLoopback(address) || CountryOf(reader, address) != code)
            {
                continue;
            }

            found[code] = address;
            if (found.Count == Wanted.Length)
            {
                break;
            }
        }

        return found;
    }

    private static string? CountryOf(Reader reader, IPAddress address) =>
        reader.Find<Dictionary<string, object>>(address)?.GetValueOrDefault("country_code") as string;
}
