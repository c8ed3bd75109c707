using System.Text.Json;

namespace IdentityService.Tests.Infrastructure;

/// <summary>A tenant's published keys, as a relying party reads them.</summary>
public static class Jwks
{
    /// <summary>The key ids in the tenant's JWKS.</summary>
    public static async Task<HashSet<string>> KeyIdsAsync(HttpClient client, string tenant)
    {
        var jwks = JsonDocument.Parse(await client.GetStringAsync($"/t/{tenant}/.well-known/jwks")).RootElement;
        return jwks.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).ToHashSet();
    }
}
