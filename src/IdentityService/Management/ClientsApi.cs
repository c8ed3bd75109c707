using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using IdentityService.Audit;
using IdentityService.Oidc;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Core;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Management;

/// <summary><c>/api/v1/tenants/{tenant}/clients</c>: the tenant's client applications, addressed by clientId.</summary>
internal static class ClientsApi
{
    public sealed class ClientBody
    {
        public string? ClientId { get; set; }

        public string? ClientSecret { get; set; }

        public bool? GenerateSecret { get; set; }

        public string? DisplayName { get; set; }

        public List<string>? RedirectUris { get; set; }

        public List<string>? PostLogoutRedirectUris { get; set; }

        public List<string>? GrantTypes { get; set; }

        public List<string>? Scopes { get; set; }

        public List<string>? Resources { get; set; }

        public List<string>? DefaultAudiences { get; set; }

        public List<string>? AllowedOrigins { get; set; }

        public bool? FirstParty { get; set; }

        /// <summary>Whether the client's authorization requests must be pushed first (RFC 9126); false by default.</summary>
        public bool? RequirePushedAuthorization { get; set; }

        /// <summary>The client's public keys (a JSON Web Key Set): it may authenticate with assertions it signs (<c>private_key_jwt</c>).</summary>
        public JsonElement? Jwks { get; set; }

        /// <summary>
        /// Where the client publishes its public keys (instead of <see cref="Jwks"/>, which it replaces; "" removes it):
        /// fetched when its assertions arrive, so that it rotates its keys by itself.
        /// </summary>
        public string? JwksUri { get; set; }

        /// <summary>Where to post logout tokens (OpenID Connect Back-Channel Logout); "" removes it.</summary>
        public string? BackchannelLogoutUri { get; set; }

        /// <summary>Whether every logout token the client gets must name the session (<c>sid</c>); false by default.</summary>
        public bool? BackchannelLogoutSessionRequired { get; set; }

        /// <summary>
        /// The tenant's API resources this client is the back end of: it may introspect access tokens issued for them
        /// and, with the token-exchange grant, exchange them for tokens to call other APIs on the person's behalf.
        /// </summary>
        public List<string>? ServedResources { get; set; }
    }

    public sealed class RotateSecret
    {
        /// <summary>How long the previous secret keeps working. Default 24 hours; 0 ends it at once.</summary>
        public int? OverlapHours { get; set; }
    }

    public sealed record ClientView(
        string ClientId, string? DisplayName, string ClientType, bool FirstParty,
        IReadOnlyList<string> RedirectUris, IReadOnlyList<string> PostLogoutRedirectUris,
        IReadOnlyList<string> GrantTypes, IReadOnlyList<string> Scopes, IReadOnlyList<string> Resources,
        IReadOnlyList<string> DefaultAudiences, IReadOnlyList<string> AllowedOrigins, DateTimeOffset CreatedAt,
        bool RequirePushedAuthorization, JsonElement? Jwks, string? JwksUri, string? BackchannelLogoutUri, bool BackchannelLogoutSessionRequired,
        IReadOnlyList<string> ServedResources, string? ClientSecret = null, DateTimeOffset? PreviousSecretExpiresAt = null);

    public static RouteGroupBuilder MapClients(this RouteGroupBuilder api)
    {
        var clients = api.MapGroup("/tenants/{tenant}/clients").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        clients.MapPost("", CreateAsync);
        clients.MapGet("", ListAsync);
        clients.MapGet("/{clientId}", GetAsync);
        clients.MapPatch("/{clientId}", UpdateAsync);
        clients.MapDelete("/{clientId}", DeleteAsync);
        clients.MapPost("/{clientId}/secret", RotateSecretAsync);
        return api;
    }

    private static async Task<IResult> CreateAsync(
        HttpContext http, TenantApplicationManager manager, IOpenIddictApplicationStore<TenantApplication> store, TenantContext tenantContext, TimeProvider time, AuditLog audit)
    {
        var body = await JsonBody.ReadAsync<ClientBody>(http.Request);
        if (body.Error is not null)
        {
            return body.Error;
        }

        var request = body.Value!;
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrEmpty(request.ClientId) || request.ClientId.Length > 100
            || !request.ClientId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            errors["clientId"] = ["clientId is required: 1-100 characters of letters, digits, '-', '_' and '.'."];
        }

        if (request.ClientSecret is not null && request.GenerateSecret == true)
        {
            errors["clientSecret"] = ["Give clientSecret or generateSecret, not both."];
        }
        else if (request.ClientSecret is not null && (request.ClientSecret.Length < 16 || request.ClientSecret.Length > 200))
        {
            errors["clientSecret"] = ["clientSecret must be 16-200 characters."];
        }

        var secret = request.GenerateSecret == true ? NewSecret() : request.ClientSecret;
        var entity = new TenantApplication { CreatedAt = time.GetUtcNow() };
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = request.ClientId,
            // A client with a secret or keys to sign its assertions with authenticates: a confidential client.
            ClientType = secret is null && request.Jwks is null && string.IsNullOrEmpty(request.JwksUri) ? ClientTypes.Public : ClientTypes.Confidential,
            ApplicationType = ApplicationTypes.Web,
            ConsentType = ConsentTypes.Explicit,
        };
        ClientSettings.Apply(descriptor, entity, request, tenantContext.Required, errors, creating: true, Development(http));
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        if (await manager.FindForChangeAsync(request.ClientId!, http.RequestAborted) is not null)
        {
            return Problems.Conflict("client_exists", "A client with this clientId exists in this tenant.");
        }

        // The secret goes to CreateAsync, which stores only its hash.
        await manager.PopulateAsync(entity, descriptor, http.RequestAborted);
        try
        {
            await manager.CreateAsync(entity, secret, http.RequestAborted);
        }
        catch (Exception e) when (e is DbUpdateException or OpenIddictExceptions.ValidationException)
        {
            // Created meanwhile by a request racing this one: OpenIddict's own uniqueness check, or the database's index.
            // Asked of the store: the manager's cache still holds the miss this request saw above.
            if (await store.FindByClientIdAsync(request.ClientId!, http.RequestAborted) is null)
            {
                throw;
            }

            return Problems.Conflict("client_exists", "A client with this clientId exists in this tenant.");
        }

        await audit.AdminActionAsync(http, AuditEventTypes.ClientCreated, clientId: entity.ClientId, details: new { fields = AuditLog.FieldsSet(request) });
        var view = await ViewAsync(manager, entity) with { ClientSecret = request.GenerateSecret == true ? secret : null };
        return Results.Created($"/api/v1/tenants/{tenantContext.Required.Id}/clients/{entity.ClientId}", view);
    }

    private static async Task<IResult> ListAsync(HttpContext http, Data.IdentityDb db, TenantApplicationManager manager)
    {
        var (limit, after, error) = Paging.Read(http.Request);
        if (error is not null)
        {
            return error;
        }

        var query = db.Applications.AsNoTracking();
        if (after is not null)
        {
            query = query.Where(a => a.ClientId!.CompareTo(after) > 0);
        }

        var rows = await query.OrderBy(a => a.ClientId).Take(limit + 1).ToListAsync(http.RequestAborted);
        var views = new List<ClientView>();
        foreach (var row in rows)
        {
            views.Add(await ViewAsync(manager, row));
        }

        return Results.Ok(Paging.Create(Enumerable.Range(0, rows.Count).ToList(), limit, i => rows[i].ClientId!, i => views[i]));
    }

    private static async Task<IResult> GetAsync(string clientId, TenantApplicationManager manager, CancellationToken cancellationToken)
    {
        var entity = await manager.FindForChangeAsync(clientId, cancellationToken);
        return entity is null ? ClientNotFound() : Results.Ok(await ViewAsync(manager, entity));
    }

    private static async Task<IResult> UpdateAsync(HttpContext http, string clientId, TenantApplicationManager manager, TenantContext tenantContext, AuditLog audit)
    {
        var body = await JsonBody.ReadAsync<ClientBody>(http.Request, "application/json", "application/merge-patch+json");
        if (body.Error is not null)
        {
            return body.Error;
        }

        var entity = await manager.FindForChangeAsync(clientId, http.RequestAborted);
        if (entity is null)
        {
            return ClientNotFound();
        }

        var request = body.Value!;
        var errors = new Dictionary<string, string[]>();
        if (request.ClientId is not null && request.ClientId != clientId)
        {
            errors["clientId"] = ["clientId cannot change."];
        }

        if (request.ClientSecret is not null || request.GenerateSecret is not null)
        {
            errors["clientSecret"] = ["Rotate a secret with POST .../secret."];
        }

        var descriptor = new OpenIddictApplicationDescriptor();
        await manager.PopulateAsync(descriptor, entity, http.RequestAborted);
        ClientSettings.Apply(descriptor, entity, request, tenantContext.Required, errors, creating: false, Development(http));
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        await manager.PopulateAsync(entity, descriptor, http.RequestAborted);
        await manager.UpdateAsync(entity, http.RequestAborted);
        await audit.AdminActionAsync(http, AuditEventTypes.ClientUpdated, clientId: clientId, details: new { fields = AuditLog.FieldsSet(request) });
        return Results.Ok(await ViewAsync(manager, entity));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string clientId, TenantApplicationManager manager, AuditLog audit)
    {
        var cancellationToken = http.RequestAborted;
        var entity = await manager.FindForChangeAsync(clientId, cancellationToken);
        if (entity is null)
        {
            return ClientNotFound();
        }

        // OpenIddict's store removes the client's authorizations and tokens with it: its tokens stop working.
        await manager.DeleteAsync(entity, cancellationToken);
        await audit.AdminActionAsync(http, AuditEventTypes.ClientDeleted, clientId: clientId);
        return Results.NoContent();
    }

    private static async Task<IResult> RotateSecretAsync(HttpContext http, string clientId, TenantApplicationManager manager, TimeProvider time, AuditLog audit)
    {
        RotateSecret request = new();
        if (http.Request.ContentLength is > 0 || http.Request.ContentType is not null)
        {
            var body = await JsonBody.ReadAsync<RotateSecret>(http.Request);
            if (body.Error is not null)
            {
                return body.Error;
            }

            request = body.Value!;
        }

        if (request.OverlapHours is < 0 or > 720)
        {
            return Problems.Validation("overlapHours", "overlapHours must be from 0 to 720.");
        }

        var entity = await manager.FindForChangeAsync(clientId, http.RequestAborted);
        if (entity is null)
        {
            return ClientNotFound();
        }

        if (entity.ClientType != ClientTypes.Confidential)
        {
            return Problems.Status(StatusCodes.Status409Conflict, "client_public", "A public client has no secret.");
        }

        var overlap = TimeSpan.FromHours(request.OverlapHours ?? 24);
        entity.PreviousClientSecret = overlap > TimeSpan.Zero ? entity.ClientSecret : null;
        entity.PreviousSecretExpiresAt = overlap > TimeSpan.Zero ? time.GetUtcNow() + overlap : null;
        var secret = NewSecret();
        await manager.UpdateAsync(entity, secret, http.RequestAborted);
        await audit.AdminActionAsync(http, AuditEventTypes.ClientSecretRotated, clientId: clientId, details: new { overlapHours = overlap.TotalHours });
        return Results.Ok((await ViewAsync(manager, entity)) with { ClientSecret = secret, PreviousSecretExpiresAt = entity.PreviousSecretExpiresAt });
    }

    internal static async Task<ClientView> ViewAsync(TenantApplicationManager manager, TenantApplication entity)
    {
        var permissions = await manager.GetPermissionsAsync(entity);
        List<string> With(string prefix) => permissions.Where(p => p.StartsWith(prefix, StringComparison.Ordinal)).Select(p => p[prefix.Length..]).ToList();
        var scopes = With(Permissions.Prefixes.Scope);
        if (permissions.Contains(Permissions.Endpoints.Authorization) || permissions.Contains(Permissions.Endpoints.DeviceAuthorization))
        {
            scopes.Insert(0, Scopes.OpenId);
        }

        return new ClientView(
            entity.ClientId!, entity.DisplayName, entity.ClientType ?? ClientTypes.Public, entity.FirstParty,
            (await manager.GetRedirectUrisAsync(entity)).ToList(), (await manager.GetPostLogoutRedirectUrisAsync(entity)).ToList(),
            With(Permissions.Prefixes.GrantType), scopes, With(Permissions.Prefixes.Resource),
            Json(entity.DefaultAudiences), Json(entity.AllowedOrigins), entity.CreatedAt,
            (await manager.GetRequirementsAsync(entity)).Contains(Requirements.Features.PushedAuthorizationRequests),
            string.IsNullOrEmpty(entity.JsonWebKeySet) ? null : JsonSerializer.Deserialize<JsonElement>(entity.JsonWebKeySet),
            entity.JwksUri, entity.BackchannelLogoutUri, entity.BackchannelLogoutSessionRequired, Json(entity.ServedResources),
            PreviousSecretExpiresAt: entity.PreviousSecretExpiresAt);
    }

    private static List<string> Json(string? value) => string.IsNullOrEmpty(value) ? [] : JsonSerializer.Deserialize<List<string>>(value) ?? [];

    private static string NewSecret() => Base64UrlEncode(RandomNumberGenerator.GetBytes(32));

    private static string Base64UrlEncode(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static bool Development(HttpContext http) => http.RequestServices.GetRequiredService<IHostEnvironment>().IsDevelopment();

    private static IResult ClientNotFound() => Problems.NotFound("client_not_found", "No client has this clientId in this tenant.");
}
