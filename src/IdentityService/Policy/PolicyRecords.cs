using IdentityService.Data;

namespace IdentityService.Policy;

/// <summary>A tenant's stored policy document (JSON). A tenant without a row has the defaults.</summary>
public sealed class TenantPolicyRecord : ITenantOwned
{
    public string TenantId { get; set; } = "";

    public required string Document { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }
}

/// <summary>One change of a tenant's policy: who, when, the document before and after (secrets left out).</summary>
public sealed class PolicyChange : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public DateTimeOffset Time { get; set; }

    /// <summary>The caller: <c>client:{clientId}@{tenant}</c> or <c>user:{userId}@{tenant}</c>.</summary>
    public required string Actor { get; set; }

    public required string Before { get; set; }

    public required string After { get; set; }
}
