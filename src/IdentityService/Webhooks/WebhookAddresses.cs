using IdentityService.Protection;

namespace IdentityService.Webhooks;

/// <summary>
/// Where a webhook may point. Outside Development: an <c>https</c> URL whose host is a public address, checked when
/// the webhook is created (an address written in the URL) and again on every connection (<see cref="PublicAddresses"/>).
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

        return development || PublicAddresses.MayBePublic(uri.IdnHost) ? null : "url must point at a public address.";
    }
}
