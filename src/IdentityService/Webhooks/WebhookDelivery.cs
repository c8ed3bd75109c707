using IdentityService.Data;

namespace IdentityService.Webhooks;

/// <summary>
/// One event sent to one webhook: its outcome, and while it is <see cref="Pending"/> when it is tried next. Kept in
/// the database so that a retry survives a restart and a tenant's admin sees what its endpoint got.
/// </summary>
public sealed class WebhookDelivery : ITenantOwned
{
    public const string Pending = "pending";
    public const string Delivered = "delivered";
    public const string Failed = "failed";

    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    public Guid WebhookId { get; set; }

    /// <summary>The audit event delivered: also the delivery's <c>webhook-id</c>, the same at every attempt.</summary>
    public long EventId { get; set; }

    public required string EventType { get; set; }

    /// <summary><see cref="Pending"/>, <see cref="Delivered"/> or <see cref="Failed"/> (every attempt made).</summary>
    public required string Status { get; set; }

    /// <summary>Attempts made so far; a replica takes a pending delivery only by moving it from the count it read.</summary>
    public int Attempts { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? LastAttemptAt { get; set; }

    /// <summary>The HTTP status of the last answer; null when the endpoint could not be reached.</summary>
    public int? LastStatus { get; set; }

    /// <summary>Why the last attempt failed, in a few words (never the answer's body).</summary>
    public string? LastError { get; set; }

    /// <summary>When a pending delivery is tried next (or, while one is being tried, when its replica's hold ends).</summary>
    public DateTimeOffset? NextAttemptAt { get; set; }

    public DateTimeOffset? DeliveredAt { get; set; }
}
