using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Management;

/// <summary>
/// A client's public keys (<c>jwks</c>), with which it signs the assertions it authenticates with instead of a secret
/// (<c>private_key_jwt</c>, RFC 7523): a JSON Web Key Set of 1 to <see cref="MaxKeys"/> RSA (2048 to 4096 bits) or
/// EC (P-256, P-384, P-521) signature keys, without any private part.
/// </summary>
internal static class ClientKeys
{
    public const int MaxKeys = 10;

    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    private static readonly string[] Curves = ["P-256", "P-384", "P-521"];
    private static readonly string[] TextMembers = ["kty", "use", "alg", "kid", "crv", "n", "e", "x", "y"];

    /// <summary>The key set, or why it is refused (a sentence for the API's answer).</summary>
    public static (JsonWebKeySet? Keys, string? Error) Parse(JsonElement jwks)
    {
        if (jwks.ValueKind != JsonValueKind.Object || !jwks.TryGetProperty("keys", out var keys) || keys.ValueKind != JsonValueKind.Array)
        {
            return (null, "jwks must be a JSON Web Key Set: an object with a \"keys\" array.");
        }

        if (keys.GetArrayLength() is 0 or > MaxKeys)
        {
            return (null, $"jwks must hold 1 to {MaxKeys} keys.");
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        var index = 0;
        foreach (var key in keys.EnumerateArray())
        {
            if (Refusal(key, ids) is { } refusal)
            {
                return (null, $"jwks.keys[{index}]: {refusal}");
            }

            index++;
        }

        JsonWebKeySet set;
        try
        {
            set = JsonWebKeySet.Create(jwks.GetRawText());
        }
        catch (Exception e) when (e is ArgumentException or JsonException or FormatException or InvalidOperationException)
        {
            return (null, "jwks must be a JSON Web Key Set: an object with a \"keys\" array.");
        }

        return set.GetSigningKeys().Count == keys.GetArrayLength() ? (set, null) : (null, "each key of jwks must be one that checks signatures.");
    }

    private static string? Refusal(JsonElement key, HashSet<string> ids)
    {
        if (key.ValueKind != JsonValueKind.Object)
        {
            return "a key must be a JSON object.";
        }

        if (PrivateMembers.FirstOrDefault(m => key.TryGetProperty(m, out _)) is { } member)
        {
            return $"a private key part (\"{member}\") was given: give the public key only, and keep the private key with the client.";
        }

        if (Text(key, "use") is { } use && use != "sig")
        {
            return "\"use\" must be \"sig\" when given.";
        }

        if (Text(key, "alg") is { } alg && !Oidc.ClientAssertions.Algorithms.Contains(alg))
        {
            return $"\"alg\" must be one of {string.Join(", ", Oidc.ClientAssertions.Algorithms)} when given.";
        }

        if (TextMembers.FirstOrDefault(m => key.TryGetProperty(m, out var v) && v.ValueKind != JsonValueKind.String) is { } notText)
        {
            return $"\"{notText}\" must be a string.";
        }

        if (Text(key, "kid") is { } kid && (kid.Length > 200 || !ids.Add(kid)))
        {
            return "\"kid\" must be at most 200 characters and differ from the other keys'.";
        }

        return Text(key, "kty") switch
        {
            "RSA" when Bytes(key, "n") is not { Length: >= 256 and <= 512 } || Bytes(key, "e") is not { Length: > 0 and <= 8 } e || !SafeExponent(e) =>
                "an RSA key needs \"n\" (2048 to 4096 bits) and \"e\" (odd, at least 65537), base64url-encoded.",
            "EC" when Text(key, "crv") is not { } crv || !Curves.Contains(crv) || Bytes(key, "x") is not { Length: > 0 } || Bytes(key, "y") is not { Length: > 0 } =>
                "an EC key needs \"crv\" (P-256, P-384 or P-521), \"x\" and \"y\", base64url-encoded.",
            "RSA" or "EC" => null,
            _ => "\"kty\" must be \"RSA\" or \"EC\".",
        };
    }

    /// <summary>
    /// An RSA public exponent that makes signatures hard to forge: odd, and at least 65537 (with 1 a signature is its
    /// own message, so anyone could sign as the client).
    /// </summary>
    private static bool SafeExponent(byte[] e)
    {
        var value = 0UL;
        foreach (var b in e)
        {
            value = (value << 8) | b;
        }

        return value % 2 == 1 && value >= 65537;
    }

    private static string? Text(JsonElement key, string name) =>
        key.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static byte[]? Bytes(JsonElement key, string name)
    {
        if (Text(key, name) is not { Length: > 0 and <= 1000 } text)
        {
            return null;
        }

        try
        {
            return Base64UrlEncoder.DecodeBytes(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
