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
}
