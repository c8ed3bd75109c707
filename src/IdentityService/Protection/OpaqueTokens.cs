using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;

namespace IdentityService.Protection;

/// <summary>
/// Random tokens handed to a browser (a reset link, a second-factor challenge, a remembered browser) of which the
/// database keeps only the SHA-256: the table alone opens nothing.
/// </summary>
public static class OpaqueTokens
{
    /// <summary>A new token: 256 random bits, Base64url.</summary>
    public static string New() => WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(32));

    /// <summary>What is stored of a token.</summary>
    public static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    /// <summary>A protection store key part for a value that must not be kept (a device code, an assertion's jti): 128 bits of its SHA-256, in hex.</summary>
    public static string StoreKey(string value) => Convert.ToHexString(Hash(value), 0, 16);
}
