using IdentityService.Data;

namespace IdentityService.Policy;

/// <summary>A tenant's stored policy document (JSON). A tenant without a row has the defaults.</summary>
public sealed class TenantPolicyRecord : ITenantOwned
{
    public string TenantId { get; set; } = "";

    public required string Document { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }
}
