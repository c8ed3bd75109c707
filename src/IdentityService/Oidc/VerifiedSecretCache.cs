using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Oidc;

/// <summary>
/// Remembers, for a short time, that a presented client secret matched a stored secret hash, so that a
/// back end asking for tokens many times a second pays the slow hash (PBKDF2) once, not on every request.
/// The key is a keyed hash (HMAC with a per-process random key) of the client, the presented secret and
/// the stored hash: the secret itself is never kept, and a rotated or revoked secret (a new stored hash)
/// misses the cache at once.
/// </summary>
internal sealed class VerifiedSecretCache : IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly MemoryCache _verified = new(new MemoryCacheOptions { SizeLimit = 100_000 });

    public bool IsVerified(string tenantId, string clientId, string presented, string storedHash) =>
        _verified.TryGetValue(Key(tenantId, clientId, presented, storedHash), out _);

    public void Remember(string tenantId, string clientId, string presented, string storedHash) =>
        _verified.Set(Key(tenantId, clientId, presented, storedHash), true, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Lifetime });

    private string Key(string tenantId, string clientId, string presented, string storedHash)
    {
        var material = Encoding.UTF8.GetBytes(string.Join('\n', tenantId, clientId, storedHash, presented));
        return Convert.ToBase64String(HMACSHA256.HashData(_key, material));
    }

    public void Dispose() => _verified.Dispose();
}
