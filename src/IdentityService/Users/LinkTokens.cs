using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;

namespace IdentityService.Users;

/// <summary>
/// The tokens of mailed links that keep no row (address verification and change): an account id, an expiry and
/// what else the link is bound to, protected with Data Protection under a purpose of the tenant, as
/// <c>{id}|{unix expiry}|{field}...</c>.
/// </summary>
internal static class LinkTokens
{
    public static string Create(IDataProtector protector, Guid accountId, DateTimeOffset expires, params string?[] fields) =>
        protector.Protect(string.Join('|', [accountId.ToString(), expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), .. fields]));

    /// <summary>The account id and the other fields of a token, or null when it was not made here, is malformed or has expired.</summary>
    public static (string AccountId, string[] Fields)? Open(IDataProtector protector, string? token, int fields, DateTimeOffset now)
    {
        string payload;
        try
        {
            payload = token is { Length: > 0 and <= 2000 } ? protector.Unprotect(token) : "";
        }
        catch (CryptographicException)
        {
            return null;
        }

        var parts = payload.Split('|');
        return parts.Length == fields + 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var expires)
            && DateTimeOffset.FromUnixTimeSeconds(expires) > now
            ? (parts[0], parts[2..])
            : null;
    }
}
