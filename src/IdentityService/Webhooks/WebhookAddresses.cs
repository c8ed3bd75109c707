using System.Net;
using System.Net.Sockets;

namespace IdentityService.Webhooks;

/// <summary>
/// Where a webhook may point. Outside Development: an <c>https</c> URL whose host is a public address, checked when
/// the webhook is created (an address written in the URL) and again on every connection (the addresses its name
/// resolves to then), so that a tenant cannot make the service call into its own network (the cloud's metadata
/// endpoint, a database, an admin port), even through a name that resolves there later.
/// In Development a webhook may also be plain <c>http</c> and point at this machine or the local network.
/// </summary>
public static class WebhookAddresses
{
    /// <summary>Why the URL cannot be a webhook's, or null when it can.</summary>
    public static string? Check(string? url, bool development)
    {
        if (string.IsNullOrEmpty(url) || url.Length > 2000 || url.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))
            || !Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            return "url must be an absolute URL of at most 2,000 characters.";
        }

        if (uri.Scheme != Uri.UriSchemeHttps && !(development && uri.Scheme == Uri.UriSchemeHttp))
        {
            return development ? "url must be http or https." : "url must be https.";
        }

        if (uri.UserInfo.Length > 0 || uri.Fragment.Length > 0)
        {
            return "url must not carry a user name, a password or a fragment.";
        }

        return development || MayBePublic(uri.IdnHost) ? null : "url must point at a public address.";
    }

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
            || (bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b));
    }

    /// <summary>
    /// Connects to the first public address the host resolves to; refuses when none is public. Used as the
    /// webhook client's connect callback outside Development.
    /// </summary>
    public static ValueTask<Stream> ConnectPublicAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken) =>
        ConnectPublicAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, cancellationToken);

    /// <summary>The same for any host a tenant names (its webhooks, its SMTP server): a name cannot lead into our network.</summary>
    public static async ValueTask<Stream> ConnectPublicAsync(string host, int port, CancellationToken cancellationToken)
    {
        var addresses = IPAddress.TryParse(host, out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(host, cancellationToken);
        var target = addresses.FirstOrDefault(IsPublic)
            ?? throw new HttpRequestException($"The host {host} resolves to no public address.");
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
