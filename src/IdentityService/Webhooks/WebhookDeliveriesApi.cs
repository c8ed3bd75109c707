using System.Globalization;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Management;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Webhooks;

/// <summary>
/// <c>/api/v1/tenants/{tenant}/webhooks/{id}/deliveries</c>: what a webhook's endpoint was sent, newest event first,
/// with each delivery's outcome (<c>?status=pending|delivered|failed</c>); and one sent again on an admin's request
/// (<c>POST .../deliveries/{eventId}/retry</c>), once, with the same <c>webhook-id</c>.
/// </summary>
internal static class WebhookDeliveriesApi
{
    public sealed record DeliveryView(
        string EventId, string EventType, string Status, int Attempts, DateTimeOffset CreatedAt, DateTimeOffset? LastAttemptAt, int? LastStatus,
        string? LastError, DateTimeOffset? NextAttemptAt, DateTimeOffset? DeliveredAt);

    private static readonly string[] Statuses = [WebhookDelivery.Pending, WebhookDelivery.Delivered, WebhookDelivery.Failed];

    public static RouteGroupBuilder MapWebhookDeliveries(this RouteGroupBuilder api)
    {
        var deliveries = api.MapGroup("/tenants/{tenant}/webhooks/{id}/deliveries").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        deliveries.MapGet("", ListAsync);
        deliveries.MapPost("/{eventId}/retry", RetryAsync);
        return api;
    }

    private static async Task<IResult> ListAsync(HttpContext http, string id, IdentityDb db)
    {
        var (limit, after, error) = Paging.Read(http.Request);
        if (error is not null)
        {
            return error;
        }

        long? before = null;
        if (after is not null)
        {
            if (!long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var cursor))
            {
                return Problems.Validation("cursor", "cursor is not one this API gave.");
            }

            before = cursor;
        }

        string? status = http.Request.Query["status"];
        if (status is not null && !Statuses.Contains(status))
        {
            return Problems.Validation("status", "status must be pending, delivered or failed.");
        }

        if (await FindWebhookAsync(db, id, http.RequestAborted) is not { } webhookId)
        {
            return WebhookNotFound();
        }

        var rows = await db.Set<WebhookDelivery>().AsNoTracking()
            .Where(d => d.WebhookId == webhookId && (status == null || d.Status == status) && (before == null || d.EventId < before))
            .OrderByDescending(d => d.EventId).Take(limit + 1).ToListAsync(http.RequestAborted);
        return Results.Ok(Paging.Create(rows, limit, d => d.EventId.ToString(CultureInfo.InvariantCulture), View));
    }

    private static async Task<IResult> RetryAsync(
        HttpContext http, string id, string eventId, IdentityDb db, TenantContext tenant, WebhookDispatcher dispatcher, AuditLog audit)
    {
        var webhookId = await FindWebhookAsync(db, id, http.RequestAborted);
        var delivery = webhookId is null || !long.TryParse(eventId, NumberStyles.None, CultureInfo.InvariantCulture, out var eventNumber)
            ? null
            : await db.Set<WebhookDelivery>().AsNoTracking().SingleOrDefaultAsync(d => d.WebhookId == webhookId && d.EventId == eventNumber, http.RequestAborted);
        if (delivery is null)
        {
            return webhookId is null ? WebhookNotFound() : Problems.NotFound("delivery_not_found", "This webhook has no delivery of this event.");
        }

        if (!await dispatcher.SendAgainAsync(tenant.Required, delivery, http.RequestAborted))
        {
            return Problems.Conflict("delivery_pending", "This delivery is being tried: it can be sent again once it is delivered or failed.");
        }

        await audit.AdminActionAsync(http, AuditEventTypes.WebhookRedelivered, details: new { webhook = webhookId, eventId = delivery.EventId.ToString(CultureInfo.InvariantCulture) });
        return Results.Accepted(value: View(delivery) with { Status = WebhookDelivery.Pending, NextAttemptAt = null });
    }

    private static async Task<Guid?> FindWebhookAsync(IdentityDb db, string id, CancellationToken cancellationToken) =>
        Guid.TryParse(id, out var webhookId) && await db.Set<Webhook>().AnyAsync(w => w.Id == webhookId, cancellationToken) ? webhookId : null;

    private static IResult WebhookNotFound() => Problems.NotFound("webhook_not_found", "No webhook has this id in this tenant.");

    private static DeliveryView View(WebhookDelivery d) => new(
        d.EventId.ToString(CultureInfo.InvariantCulture), d.EventType, d.Status, d.Attempts, d.CreatedAt, d.LastAttemptAt, d.LastStatus, d.LastError,
        d.Status == WebhookDelivery.Pending ? d.NextAttemptAt : null, d.DeliveredAt);
}
