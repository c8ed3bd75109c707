using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Management;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Webhooks;

/// <summary>
/// <c>/api/v1/tenants/{tenant}/webhooks</c>: create (201, with the signing secret shown this once), list and delete
/// a tenant's webhooks. The secret is never answered again; a webhook is replaced, not edited.
/// </summary>
internal static class WebhooksApi
{
    public const int MaxPerTenant = 20;

    public sealed class WebhookBody
    {
        public string? Url { get; set; }

        public List<string?>? Events { get; set; }
    }

    public sealed record WebhookView(Guid Id, string Url, IReadOnlyList<string> Events, DateTimeOffset CreatedAt, string? CreatedBy, string? Secret = null);

    public static RouteGroupBuilder MapWebhooks(this RouteGroupBuilder api)
    {
        var webhooks = api.MapGroup("/tenants/{tenant}/webhooks").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        webhooks.MapPost("", CreateAsync);
        webhooks.MapGet("", ListAsync);
        webhooks.MapDelete("/{id}", DeleteAsync);
        return api;
    }

    private static async Task<IResult> CreateAsync(
        HttpContext http, IdentityDb db, TenantContext tenantContext, IDataProtectionProvider protection, IHostEnvironment environment,
        IInvalidationBus bus, TimeProvider time, AuditLog audit)
    {
        var body = await JsonBody.ReadAsync<WebhookBody>(http.Request);
        if (body.Error is not null)
        {
            return body.Error;
        }

        var request = body.Value!;
        var errors = new Dictionary<string, string[]>();
        if (WebhookAddresses.Check(request.Url, environment.IsDevelopment()) is { } urlError)
        {
            errors["url"] = [urlError];
        }

        var events = request.Events ?? [];
        if (events.Count == 0 || events.Count > AuditEventTypes.All.Count + 1
            || events.Any(e => e is null || (e != "*" && !AuditEventTypes.All.Contains(e))) || events.Distinct().Count() != events.Count)
        {
            errors["events"] = ["events must list event types (such as user.created), each once, or \"*\" for all of them."];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        if (await db.Set<Webhook>().CountAsync(http.RequestAborted) >= MaxPerTenant)
        {
            return Problems.Conflict("webhook_limit", $"A tenant has at most {MaxPerTenant} webhooks: delete one first.");
        }

        var secret = StandardWebhooks.NewSecret();
        var webhook = new Webhook
        {
            Id = Guid.NewGuid(),
            Url = request.Url!,
            Events = events.Select(e => e!).ToList(),
            ProtectedSecret = WebhookDispatcher.Secrets(protection).Protect(secret),
            CreatedAt = time.GetUtcNow(),
            CreatedBy = AuditLog.Actor(http.User),
        };
        db.Add(webhook);
        await db.SaveChangesAsync(http.RequestAborted);
        await bus.PublishAsync(WebhookDispatcher.Channel, tenantContext.Required.Id);
        await audit.AdminActionAsync(http, AuditEventTypes.WebhookCreated, details: new { webhook = webhook.Id, origin = Origin(webhook.Url), events = webhook.Events });
        return Results.Created($"/api/v1/tenants/{tenantContext.Required.Id}/webhooks/{webhook.Id}", View(webhook) with { Secret = secret });
    }

    private static async Task<IResult> ListAsync(HttpContext http, IdentityDb db)
    {
        var (limit, after, error) = Paging.Read(http.Request);
        if (error is not null)
        {
            return error;
        }

        // A tenant has at most MaxPerTenant of them: paged in memory, by id.
        var rows = (await db.Set<Webhook>().AsNoTracking().ToListAsync(http.RequestAborted))
            .Where(w => after is null || string.CompareOrdinal(w.Id.ToString(), after) > 0)
            .OrderBy(w => w.Id.ToString(), StringComparer.Ordinal)
            .Take(limit + 1)
            .ToList();
        return Results.Ok(Paging.Create(rows, limit, w => w.Id.ToString(), View));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string id, IdentityDb db, TenantContext tenantContext, IInvalidationBus bus, AuditLog audit)
    {
        var webhook = Guid.TryParse(id, out var webhookId) ? await db.Set<Webhook>().SingleOrDefaultAsync(w => w.Id == webhookId, http.RequestAborted) : null;
        if (webhook is null)
        {
            return Problems.NotFound("webhook_not_found", "No webhook has this id in this tenant.");
        }

        db.Remove(webhook);
        try
        {
            await db.SaveChangesAsync(http.RequestAborted);
        }
        catch (DbUpdateConcurrencyException)
        {
            return Problems.NotFound("webhook_not_found", "No webhook has this id in this tenant.");
        }

        await bus.PublishAsync(WebhookDispatcher.Channel, tenantContext.Required.Id);
        await audit.AdminActionAsync(http, AuditEventTypes.WebhookDeleted, details: new { webhook = webhook.Id, origin = Origin(webhook.Url) });
        return Results.NoContent();
    }

    /// <summary>
    /// A webhook's URL as the audit log names it: its origin only. Many receivers take a secret in the path or the
    /// query (chat services' incoming hooks), and audit events travel on to webhooks and exports.
    /// </summary>
    private static string Origin(string url) => new Uri(url).GetLeftPart(UriPartial.Authority);

    private static WebhookView View(Webhook webhook) => new(webhook.Id, webhook.Url, webhook.Events, webhook.CreatedAt, webhook.CreatedBy);
}
