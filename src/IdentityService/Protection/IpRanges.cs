using System.Net;

namespace IdentityService.Protection;

/// <summary>Addresses and CIDR ranges (IPv4 and IPv6) as the policy writes them.</summary>
public static class IpRanges
{
    /// <summary>Parses <c>203.0.113.7</c>, <c>203.0.113.0/24</c>, <c>2001:db8::1</c> or <c>2001:db8::/32</c>.</summary>
    public static bool TryParse(string? value, out IPNetwork network)
    {
        network = default;
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        if (value.Contains('/'))
        {
            return IPNetwork.TryParse(value, out network);
        }

        if (!IPAddress.TryParse(value, out var address))
        {
            return false;
        }

        network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
        return true;
    }

    /// <summary>
    /// Whether a policy may hold <paramref name="value"/>: what <see cref="TryParse"/> reads, written as it means. IPv4
    /// in four decimal parts (.NET also reads <c>017.0.0.1</c> as octal, <c>127.1</c>, <c>0x7f.0.0.1</c> or a single
    /// number), a range's host bits zero, no IPv6 zone (<c>%eth0</c>), and no IPv4-mapped IPv6 address: the
    /// protections see a client's address as IPv4 (<see cref="Normalize"/>), so such a rule would never match.
    /// </summary>
    public static bool IsWellWritten(string? value)
    {
        if (!TryParse(value, out var network) || value!.Contains('%'))
        {
            return false;
        }

        var slash = value.IndexOf('/');
        var written = IPAddress.Parse(slash < 0 ? value : value[..slash]);
        if (written.IsIPv4MappedToIPv6 || !written.Equals(network.BaseAddress))
        {
            return false;
        }

        return written.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
            || string.Equals(written.ToString(), slash < 0 ? value : value[..slash], StringComparison.Ordinal);
    }

    public static bool Contains(IEnumerable<string> ranges, IPAddress address)
    {
        foreach (var range in ranges)
        {
            if (TryParse(range, out var network) && network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The address as the protections key it: IPv4-mapped IPv6 addresses become IPv4.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// What the per-address protections count and block (the sign-in rate limit, the failure counters, IP blocks): an
    /// IPv4 address as it is, an IPv6 address by its /64 (<c>2001:db8:1:2::/64</c>), the block a provider gives one
    /// subscriber or host: otherwise a host with a routed /64 takes a fresh address for every few attempts and no
    /// per-address limit ever fires. Loopback stays itself. Logs keep the whole address.
    /// </summary>
    public static string ProtectionKeyOf(IPAddress address)
    {
        address = Normalize(address);
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6 || IPAddress.IsLoopback(address))
        {
            return address.ToString();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes) + "/64";
    }

    /// <summary>A request's client address as every protection and log sees it (after the forwarded-headers middleware).</summary>
    public static IPAddress ClientOf(HttpContext context) => Normalize(context.Connection.RemoteIpAddress ?? IPAddress.IPv6None);
}
