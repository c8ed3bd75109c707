using System.Text.Json;

namespace IdentityService.Oidc;

internal static class Clients
{
    /// <summary>The audiences an access token of this client carries when the request names no resource.</summary>
    public static Task<List<string>> DefaultAudiencesAsync(object application) =>
        Task.FromResult(application is TenantApplication { DefaultAudiences: { Length: > 0 } json }
            ? JsonSerializer.Deserialize<List<string>>(json) ?? []
            : []);

    /// <summary>The resource every token that carries the <c>manage</c> scope is issued for.</summary>
    public const string ManagementAudience = "urn:identityservice:management";

    public const string ManageScope = "manage";
}
