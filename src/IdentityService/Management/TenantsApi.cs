using System.Security.Claims;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Oidc;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Management;

/// <summary><c>/api/v1/tenants</c>: create, list, read, update, suspend and destroy tenants.</summary>
internal static class TenantsApi
{
    public sealed class CreateTenant
    {
        public string? Id { get; set; }

        public string? DisplayName { get; set; }

        public TenantSettings? Settings { get; set; }
    }

    public sealed class UpdateTenant
    {
        public string? DisplayName { get; set; }

        public bool? Suspended { get; set; }

        public TenantSettings? Settings { get; set; }
    }

    /// <summary>The token settings of a tenant; absent fields keep their value.</summary>
    public sealed class TenantSettings
    {
        public string? AccessTokenAlgorithm { get; set; }

        public int? AccessTokenLifetimeSeconds { get; set; }

        public int? IdentityTokenLifetimeSeconds { get; set; }

        public int? RefreshTokenLifetimeSeconds { get; set; }

        public int? AuthorizationCodeLifetimeSeconds { get; set; }

        public int? RefreshTokenReuseLeewaySeconds { get; set; }

        public int? SessionLifetimeSeconds { get; set; }

        /// <summary>Seconds without use after which a session ends (60 to 86,400), or 0 for none (the default).</summary>
        public int? SessionIdleTimeoutSeconds { get; set; }

        public List<string>? ApiResources { get; set; }

        /// <summary>Days audit entries are kept (7 to 3,650), or 0 to keep them all (the default).</summary>
        public int? AuditRetentionDays { get; set; }
    }

    public sealed record TenantView(string Id, string DisplayName, bool Suspended, string Issuer, DateTimeOffset CreatedAt, TenantSettings Settings);

    public static RouteGroupBuilder MapTenants(this RouteGroupBuilder api)
    {
        api.MapPost("/tenants", CreateAsync).AddEndpointFilter(new ManagementAccess(systemOnly: true));
        api.MapGet("/tenants", ListAsync).AddEndpointFilter(new ManagementAccess(systemOnly: true));
        api.MapGet("/tenants/{tenant}", Get).AddEndpointFilter(new ManagementAccess(systemOnly: false));
        api.MapPatch("/tenants/{tenant}", UpdateAsync).AddEndpointFilter(new ManagementAccess(systemOnly: false));
        api.MapDelete("/tenants/{tenant}", DeleteAsync).AddEndpointFilter(new ManagementAccess(systemOnly: false));
        return api;
    }

    private static async Task<IResult> CreateAsync(
        HttpContext http, IdentityDb db, TimeProvider time, TenantOidcStateCache states, TenantDirectory directory, AuditLog audit, Microsoft.Extensions.Options.IOptions<IssuerOptions> issuer)
    {
        var body = await JsonBody.ReadAsync<CreateTenant>(http.Request);
        if (body.Error is not null)
        {
            return body.Error;
        }

        var request = body.Value!;
        var errors = new Dictionary<string, string[]>();
        if (!TenantIds.IsValid(request.Id))
        {
            errors["id"] = ["id must be 2-63 characters of a-z, 0-9 and '-', starting with a letter."];
        }

        if (string.IsNullOrWhiteSpace(request.DisplayName) || request.DisplayName.Length > 200 || request.DisplayName.Any(char.IsControl))
        {
            errors["displayName"] = ["displayName is required, at most 200 characters, none of them a control character."];
        }

        var tenant = new Tenant { Id = request.Id ?? "", DisplayName = request.DisplayName?.Trim() ?? "", CreatedAt = time.GetUtcNow() };
        Apply(tenant, request.Settings, errors);
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        if (await db.Tenants.AnyAsync(t => t.Id == tenant.Id, http.RequestAborted))
        {
            return Problems.Conflict("tenant_exists", "A tenant with this id exists.");
        }

        db.Tenants.Add(tenant);
        try
        {
            await db.SaveChangesAsync(http.RequestAborted);
        }
        catch (DbUpdateException)
        {
            return Problems.Conflict("tenant_exists", "A tenant with this id exists.");
        }

        // The tenant's keys are made now, not on its first sign-in: RSA key generation is the bulk of a cold start.
        await states.GetAsync(tenant, http.RequestAborted);
        await audit.AdminActionAsync(http, AuditEventTypes.TenantCreated, details: new { tenant = tenant.Id }, tenant: await PlatformAsync(directory));
        return Results.Created($"/api/v1/tenants/{tenant.Id}", View(tenant, http.Request, issuer.Value));
    }

    private static async Task<IResult> ListAsync(HttpContext http, IdentityDb db, Microsoft.Extensions.Options.IOptions<IssuerOptions> issuer)
    {
        var (limit, after, error) = Paging.Read(http.Request);
        if (error is not null)
        {
            return error;
        }

        var query = db.Tenants.AsNoTracking();
        if (after is not null)
        {
            query = query.Where(t => t.Id.CompareTo(after) > 0);
        }

        var rows = await query.OrderBy(t => t.Id).Take(limit + 1).ToListAsync(http.RequestAborted);
        return Results.Ok(Paging.Create(rows, limit, t => t.Id, t => View(t, http.Request, issuer.Value)));
    }

    private static IResult Get(HttpContext http, TenantContext tenantContext, Microsoft.Extensions.Options.IOptions<IssuerOptions> issuer) =>
        Results.Ok(View(tenantContext.Required, http.Request, issuer.Value));

    private static async Task<IResult> UpdateAsync(
        HttpContext http, IdentityDb db, TenantContext context, TenantDirectory directory, AuditLog audit, Microsoft.Extensions.Options.IOptions<IssuerOptions> issuer)
    {
        var body = await JsonBody.ReadAsync<UpdateTenant>(http.Request, "application/json", "application/merge-patch+json");
        if (body.Error is not null)
        {
            return body.Error;
        }

        var request = body.Value!;
        var tenant = await db.Tenants.SingleAsync(t => t.Id == context.Required.Id, http.RequestAborted);
        var errors = new Dictionary<string, string[]>();
        if (request.DisplayName is not null)
        {
            if (string.IsNullOrWhiteSpace(request.DisplayName) || request.DisplayName.Length > 200 || request.DisplayName.Any(char.IsControl))
            {
                errors["displayName"] = ["displayName must be 1-200 characters, none of them a control character."];
            }

            tenant.DisplayName = request.DisplayName.Trim();
        }

        if (request.Suspended is { } suspended)
        {
            // Suspending shuts the tenant's own admins out with everything else: only the platform's may do it, or undo it.
            if (suspended != tenant.Suspended && http.User.FindFirstValue(ManagementAuthenticationHandler.TenantClaim) != Tenant.SystemId)
            {
                return Problems.Status(StatusCodes.Status403Forbidden, "forbidden", "Only the platform tenant may suspend or resume a tenant.");
            }

            if (tenant.Id == Tenant.SystemId && suspended)
            {
                errors["suspended"] = ["The platform tenant cannot be suspended."];
            }

            tenant.Suspended = suspended;
        }

        Apply(tenant, request.Settings, errors);
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        tenant.Version = Guid.NewGuid();
        await db.SaveChangesAsync(http.RequestAborted);
        await directory.EvictAsync(tenant.Id);
        await audit.AdminActionAsync(http, AuditEventTypes.TenantUpdated, details: new { fields = AuditLog.FieldsSet(request) });
        return Results.Ok(View(tenant, http.Request, issuer.Value));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, TenantContext context, TenantErasure erasure, TenantDirectory directory, AuditLog audit)
    {
        if (context.Required.Id == Tenant.SystemId)
        {
            return Problems.Status(StatusCodes.Status409Conflict, "tenant_reserved", "The platform tenant cannot be deleted.");
        }

        await erasure.EraseAsync(context.Required.Id, http.RequestAborted);
        // The tenant's own log went with it: its deletion is recorded in the platform tenant's.
        await audit.AdminActionAsync(http, AuditEventTypes.TenantDeleted, details: new { tenant = context.Required.Id }, tenant: await PlatformAsync(directory));
        return Results.NoContent();
    }

    private static async Task<Tenant> PlatformAsync(TenantDirectory directory) =>
        await directory.FindAsync(Tenant.SystemId, CancellationToken.None) ?? throw new InvalidOperationException("The platform tenant is missing.");

    private static void Apply(Tenant tenant, TenantSettings? settings, Dictionary<string, string[]> errors)
    {
        if (settings is null)
        {
            return;
        }

        if (settings.AccessTokenAlgorithm is { } algorithm)
        {
            if (algorithm is not ("ES256" or "RS256"))
            {
                errors["settings.accessTokenAlgorithm"] = ["accessTokenAlgorithm must be ES256 or RS256."];
            }

            tenant.AccessTokenAlgorithm = algorithm;
        }

        tenant.AccessTokenLifetimeSeconds = Range(settings.AccessTokenLifetimeSeconds, tenant.AccessTokenLifetimeSeconds, 60, 86_400, "accessTokenLifetimeSeconds", errors);
        tenant.IdentityTokenLifetimeSeconds = Range(settings.IdentityTokenLifetimeSeconds, tenant.IdentityTokenLifetimeSeconds, 60, 86_400, "identityTokenLifetimeSeconds", errors);
        tenant.RefreshTokenLifetimeSeconds = Range(settings.RefreshTokenLifetimeSeconds, tenant.RefreshTokenLifetimeSeconds, 300, 365 * 86_400, "refreshTokenLifetimeSeconds", errors);
        tenant.AuthorizationCodeLifetimeSeconds = Range(settings.AuthorizationCodeLifetimeSeconds, tenant.AuthorizationCodeLifetimeSeconds, 30, 600, "authorizationCodeLifetimeSeconds", errors);
        tenant.RefreshTokenReuseLeewaySeconds = Range(settings.RefreshTokenReuseLeewaySeconds, tenant.RefreshTokenReuseLeewaySeconds, 0, 120, "refreshTokenReuseLeewaySeconds", errors);
        tenant.SessionLifetimeSeconds = Range(settings.SessionLifetimeSeconds, tenant.SessionLifetimeSeconds, 60, 30 * 86_400, "sessionLifetimeSeconds", errors);
        if (settings.SessionIdleTimeoutSeconds is { } idle)
        {
            if (idle != 0 && idle is < 60 or > 86_400)
            {
                errors["settings.sessionIdleTimeoutSeconds"] = ["sessionIdleTimeoutSeconds must be 0 (none) or from 60 to 86400."];
            }

            tenant.SessionIdleTimeoutSeconds = idle;
        }
        if (settings.AuditRetentionDays is { } days)
        {
            if (days != 0 && days is < 7 or > 3650)
            {
                errors["settings.auditRetentionDays"] = ["auditRetentionDays must be 0 (keep every entry) or from 7 to 3650."];
            }

            tenant.AuditRetentionDays = days;
        }

        if (settings.ApiResources is { } resources)
        {
            if (resources.Count > 50 || resources.Any(r => !Uri.TryCreate(r, UriKind.Absolute, out var uri) || uri.Fragment.Length > 0 || r.Length > 400))
            {
                errors["settings.apiResources"] = ["apiResources must be at most 50 absolute URIs without fragment."];
            }

            tenant.ApiResources = resources.Distinct(StringComparer.Ordinal).ToList();
        }
    }

    private static int Range(int? value, int current, int min, int max, string name, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return current;
        }

        if (value < min || value > max)
        {
            errors["settings." + name] = [$"{name} must be from {min} to {max}."];
        }

        return value.Value;
    }

    internal static TenantView View(Tenant t, HttpRequest request, IssuerOptions issuer) => new(
        t.Id, t.DisplayName, t.Suspended, issuer.IssuerFor(request, t.Id), t.CreatedAt,
        new TenantSettings
        {
            AccessTokenAlgorithm = t.AccessTokenAlgorithm,
            AccessTokenLifetimeSeconds = t.AccessTokenLifetimeSeconds,
            IdentityTokenLifetimeSeconds = t.IdentityTokenLifetimeSeconds,
            RefreshTokenLifetimeSeconds = t.RefreshTokenLifetimeSeconds,
            AuthorizationCodeLifetimeSeconds = t.AuthorizationCodeLifetimeSeconds,
            RefreshTokenReuseLeewaySeconds = t.RefreshTokenReuseLeewaySeconds,
            SessionLifetimeSeconds = t.SessionLifetimeSeconds,
            SessionIdleTimeoutSeconds = t.SessionIdleTimeoutSeconds,
            ApiResources = t.ApiResources,
            AuditRetentionDays = t.AuditRetentionDays,
        });
}
