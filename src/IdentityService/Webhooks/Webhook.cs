using IdentityService.Data;

namespace IdentityService.Webhooks;

/// <summary>A tenant's subscription to events of its audit log, delivered as signed JSON POSTs to its URL.</summary>
public sealed class Webhook : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public required string Url { get; set; }

    /// <summary>The event types delivered (<c>*</c>: all of them).</summary>
    public List<string> Events { get; set; } = [];

    /// <summary>The signing secret (<c>whsec_</c>...), protected with the service's data protection keys: it must be read to sign.</summary>
    public required string ProtectedSecret { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Who created it, as the audit log names callers.</summary>
    public string? CreatedBy { get; set; }
}
