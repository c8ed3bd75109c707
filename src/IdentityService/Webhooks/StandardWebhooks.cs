using System.Security.Cryptography;
using System.Text;

namespace IdentityService.Webhooks;

/// <summary>
/// Signatures as the Standard Webhooks specification defines them: the secret is <c>whsec_</c> followed by the
/// base64 of its key; a delivery carries <c>webhook-id</c>, <c>webhook-timestamp</c> (Unix seconds) and
/// <c>webhook-signature</c>, <c>v1,</c> followed by the base64 HMAC-SHA256 of <c>{id}.{timestamp}.{body}</c>.
/// </summary>
public static class StandardWebhooks
{
    public const string SecretPrefix = "whsec_";

    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public static string Sign(string secret, string id, long timestamp, string body)
    {
        var key = Convert.FromBase64String(secret[SecretPrefix.Length..]);
        var signature = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}"));
        return "v1," + Convert.ToBase64String(signature);
    }
}
