using System.Net;
using System.Net.Sockets;

namespace IdentityService.Protection;

/// <summary>
/// The addresses a tenant may make the service connect to outside Development (its webhooks, its SMTP server):
/// public ones only, checked on the name or literal it gives and again on every connection (the addresses a name
/// resolves to then), so that a tenant cannot make the service call into its own network (the cloud's metadata
/// endpoint, a database, an admin port), even through a name that resolves there later.
/// </summary>
public static class PublicAddresses
{
    /// <summary>
    /// False for a host that is sure not to be public: a private, loopback or reserved address literal, or
    /// <c>localhost</c>. A name's addresses are checked again when it is connected to (<see cref="ConnectPublicAsync(string, int, CancellationToken)"/>).
    /// </summary>
    public static bool MayBePublic(string host) =>
        !(IPAddress.TryParse(host.Trim('[', ']'), out var literal) && !IsPublic(literal)
            || host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase));

    /// <summary>True for an address on the public internet; false for loopback, private, link-local, shared and reserved ones.</summary>
    public static bool IsPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return !(b[0] is 0 or 10 or 127 or >= 224
                || (b[0] == 100 && b[1] is >= 64 and <= 127)
                || (b[0] == 169 && b[1] == 254)
                || (b[0] == 172 && b[1] is >= 16 and <= 31)
                || (b[0] == 192 && b[1] == 168)
                || (b[0] == 192 && b[1] == 0 && b[2] is 0 or 2)
                || (b[0] == 198 && b[1] is 18 or 19)
                || (b[0] == 198 && b[1] == 51 && b[2] == 100)
                || (b[0] == 203 && b[1] == 0 && b[2] == 113));
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        var bytes = address.GetAddressBytes();
        return !(IPAddress.IsLoopback(address) || address.Equals(IPAddress.IPv6Any)
            || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast || address.IsIPv6UniqueLocal
            || (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0d && bytes[3] == 0xb8)
            || (bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b)
            // Forms that carry an IPv4 address some stacks or gateways reach: IPv4-compatible (::a.b.c.d),
            // IPv4-translated (::ffff:0:a.b.c.d) and 6to4 (2002::/16).
            || bytes.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0
            || (bytes.AsSpan(0, 8).IndexOfAnyExcept((byte)0) < 0 && bytes[8] == 0xff && bytes[9] == 0xff && bytes[10] == 0 && bytes[11] == 0)
            || (bytes[0] == 0x20 && bytes[1] == 0x02));
    }

    /// <summary>
    /// Connects to the first public address the host resolves to; refuses when none is public. The webhook client's
    /// connect callback outside Development.
    /// </summary>
    public static ValueTask<Stream> ConnectPublicAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken) =>
        ConnectPublicAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, cancellationToken);

    /// <summary>The same for a host and port (a tenant's SMTP server).</summary>
    public static async ValueTask<Stream> ConnectPublicAsync(string host, int port, CancellationToken cancellationToken)
    {
        // One answer whether the name does not resolve or resolves to no public address: the error reaches the tenant's
        // admin (a webhook delivery's lastError), who must not learn which of the platform's internal names exist.
        var unreachable = new HttpRequestException($"The host {host} cannot be reached at a public address.");
        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);
        }
        catch (SocketException)
        {
            throw unreachable;
        }

        var target = addresses.FirstOrDefault(IsPublic) ?? throw unreachable;
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(target, port), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
