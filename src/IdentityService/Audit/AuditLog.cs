using System.Security.Claims;
using System.Text.Json;
using IdentityService.Data;
using IdentityService.Management;
using IdentityService.Protection;
using IdentityService.Tenancy;

namespace IdentityService.Audit;

/// <summary>Writes entries to a tenant's audit log.</summary>
public sealed class AuditLog(IServiceScopeFactory scopes, Webhooks.WebhookDispatcher webhooks, TimeProvider time, ILogger<AuditLog> logger)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Writes an entry in its own scope, with its deliveries to the tenant's webhooks. A failure to write is logged,
    /// never thrown: what was done stays done.
    /// </summary>
    /// <remarks>The request's cancellation is not used: an action done is recorded even when its caller went away.</remarks>
    public async Task WriteAsync(Tenant tenant, AuditEvent entry)
    {
        using var scope = scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        if (entry.Time == default)
        {
            entry.Time = time.GetUtcNow();
        }

        db.Add(entry);
        try
        {
            await SaveAsync(tenant, db, entry, CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Writing a {Type} event of tenant {Tenant} to the audit log failed.", entry.Type, tenant.Id);
        }
    }

    /// <summary>
    /// Saves what <paramref name="db"/> holds, among it a new <paramref name="entry"/> (the record of a change saved
    /// with it), and the entry's deliveries to the tenant's webhooks, in one transaction.
    /// </summary>
    public Task SaveAsync(Tenant tenant, IdentityDb db, AuditEvent entry, CancellationToken cancellationToken) =>
        webhooks.SaveAsync(tenant, db, entry, cancellationToken);

    /// <summary>
    /// Records an admin action of a management request, in the tenant the request manages (or <paramref name="tenant"/>):
    /// its caller as the actor, its address, and what changed.
    /// </summary>
    public Task AdminActionAsync(HttpContext http, string type, Guid? userId = null, string? clientId = null, object? details = null, Tenant? tenant = null) =>
        WriteAsync(
            tenant ?? http.RequestServices.GetRequiredService<TenantContext>().Required,
            new AuditEvent
            {
                Type = type,
                Outcome = "succeeded",
                Ip = IpRanges.ClientOf(http).ToString(),
                UserId = userId,
                ClientId = clientId,
                Actor = Actor(http.User),
                Details = details is null ? null : JsonSerializer.Serialize(details, Json),
            });

    /// <summary>Records what a signed-in person did to their own account (its second factors): they are the actor.</summary>
    public Task AccountActionAsync(HttpContext http, Tenant tenant, Users.AppUser user, string type, object details) =>
        AccountActionAsync(http, tenant, user.Id, user.Email, type, details);

    /// <summary>The same, for an account known by its id and email alone (a session's claims).</summary>
    public Task AccountActionAsync(HttpContext http, Tenant tenant, Guid userId, string? email, string type, object details) =>
        WriteAsync(tenant, new AuditEvent
        {
            Type = type,
            Outcome = "succeeded",
            UserId = userId,
            Identifier = email,
            Ip = IpRanges.ClientOf(http).ToString(),
            Actor = $"user:{userId}@{tenant.Id}",
            Details = JsonSerializer.Serialize(details, Json),
        });

    /// <summary>The names of the fields a request body set (its members that are not null), never their values.</summary>
    public static string[] FieldsSet(object body) =>
        body.GetType().GetProperties().Where(p => p.GetValue(body) is not null).Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name)).ToArray();

    /// <summary>The caller of a management request: <c>client:{clientId}@{tenant}</c> or <c>user:{userId}@{tenant}</c>.</summary>
    public static string Actor(ClaimsPrincipal user)
    {
        var tenant = user.FindFirstValue(ManagementAuthenticationHandler.TenantClaim);
        var subject = user.FindFirstValue("sub");
        var isClient = subject is not null && subject == user.FindFirstValue("client_id");
        return $"{(isClient ? "client" : "user")}:{subject}@{tenant}";
    }
}
