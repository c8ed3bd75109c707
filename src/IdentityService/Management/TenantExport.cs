using System.IO.Compression;
using System.Text.Json;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Oidc;
using IdentityService.Policy;
using IdentityService.Tenancy;
using IdentityService.Users;
using IdentityService.Webhooks;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Management;

/// <summary>
/// <c>POST /api/v1/tenants/{tenant}/export</c>: the tenant's whole data as one ZIP archive of JSON and NDJSON files,
/// each record as the management API shows it: <c>tenant.json</c>, <c>policy.json</c>, <c>users.ndjson</c>, <c>passkeys.ndjson</c>,
/// <c>clients.ndjson</c>, <c>consents.ndjson</c>, <c>signups.ndjson</c>, <c>webhooks.ndjson</c>, <c>audit-events.ndjson</c> and a <c>manifest.json</c> naming them
/// with their record counts. Secrets stay out (client and webhook secrets, the policy's captcha keys, signing keys).
/// Password hashes are included only when asked (<c>?includePasswordHashes=true</c>), to move the users to another
/// system without a password reset: that request is recorded in the audit log like every export.
/// </summary>
/// <remarks>
/// The archive is written to a temporary file (deleted when sent), reading the tables in batches, so that a
/// tenant of any size is exported in bounded memory.
/// </remarks>
internal static class TenantExport
{
    public const string Format = "identityservice-export/1";
    private const int Batch = 500;

    public static RouteGroupBuilder MapExport(this RouteGroupBuilder api)
    {
        api.MapPost("/tenants/{tenant}/export", ExportAsync).AddEndpointFilter(new ManagementAccess(systemOnly: false));
        return api;
    }

    private static async Task<IResult> ExportAsync(
        HttpContext http, IdentityDb db, TenantContext tenantContext, UserManager<AppUser> users, TenantApplicationManager clients,
        PolicyStore policies, AuditLog audit, TimeProvider time, Microsoft.Extensions.Options.IOptions<IssuerOptions> issuer)
    {
        var hashes = http.Request.Query["includePasswordHashes"].ToString();
        if (hashes is not ("" or "true" or "false"))
        {
            return Problems.Validation("includePasswordHashes", "includePasswordHashes must be true or false.");
        }

        var withHashes = hashes == "true";
        var tenant = tenantContext.Required;
        var cancellationToken = http.RequestAborted;
        var path = Path.Combine(Path.GetTempPath(), $"identityservice-export-{Guid.NewGuid():N}.zip");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose);
        try
        {
            var counts = new Dictionary<string, int>();
            using (var zip = new ZipArchive(file, ZipArchiveMode.Create, leaveOpen: true))
            {
                Write(zip, "tenant.json", TenantsApi.View(tenant, http.Request, issuer.Value));
                Write(zip, "policy.json", PolicyStore.Redact(await policies.GetAsync(tenant, cancellationToken)));

                counts["users.ndjson"] = await WriteLinesAsync(zip, "users.ndjson", async after =>
                {
                    var rows = await db.Users.AsNoTracking().Where(u => after == null || u.Id.CompareTo(Guid.Parse(after)) > 0)
                        .OrderBy(u => u.Id).Take(Batch).ToListAsync(cancellationToken);
                    var views = new List<object>();
                    foreach (var row in rows)
                    {
                        var view = await UsersApi.ViewAsync(users, row);
                        if (withHashes)
                        {
                            var withHash = JsonSerializer.SerializeToNode(view, Options)!.AsObject();
                            withHash["passwordHash"] = row.PasswordHash;
                            views.Add(withHash);
                        }
                        else
                        {
                            views.Add(view);
                        }
                    }

                    return (views, rows.Count == Batch ? rows[^1].Id.ToString() : null);
                });

                // Passkeys' public keys (COSE, Base64url) as WebAuthn registered them: usable by another system serving the same
                // relying party (host). No second-factor secret (authenticator keys, recovery codes) leaves.
                counts["passkeys.ndjson"] = await WriteLinesAsync(zip, "passkeys.ndjson", async after =>
                {
                    var ids = await db.Users.AsNoTracking().Where(u => after == null || u.Id.CompareTo(Guid.Parse(after)) > 0)
                        .OrderBy(u => u.Id).Select(u => u.Id).Take(Batch).ToListAsync(cancellationToken);
                    var rows = await db.UserPasskeys.AsNoTracking().Where(p => ids.Contains(p.UserId)).ToListAsync(cancellationToken);
                    return (rows.OrderBy(p => p.UserId).ThenBy(p => p.Data.CreatedAt).Select(p => (object)new
                    {
                        p.UserId,
                        CredentialId = Mfa.Passkeys.Encode(p.CredentialId),
                        p.Data.Name,
                        p.Data.CreatedAt,
                        PublicKey = Mfa.Passkeys.Encode(p.Data.PublicKey),
                        p.Data.SignCount,
                        p.Data.Transports,
                        p.Data.IsUserVerified,
                        p.Data.IsBackupEligible,
                        p.Data.IsBackedUp,
                    }).ToList(), ids.Count == Batch ? ids[^1].ToString() : null);
                });

                counts["clients.ndjson"] = await WriteLinesAsync(zip, "clients.ndjson", async after =>
                {
                    var rows = await db.Applications.AsNoTracking().Where(a => after == null || a.ClientId!.CompareTo(after) > 0)
                        .OrderBy(a => a.ClientId).Take(Batch).ToListAsync(cancellationToken);
                    var views = new List<object>();
                    foreach (var row in rows)
                    {
                        views.Add(await ClientsApi.ViewAsync(clients, row));
                    }

                    return (views, rows.Count == Batch ? rows[^1].ClientId : null);
                });

                // Consents people gave third-party clients (a sign-in's own authorization is not data a tenant keeps).
                var clientIds = await db.Applications.AsNoTracking().ToDictionaryAsync(a => a.Id, a => a.ClientId!, cancellationToken);
                counts["consents.ndjson"] = await WriteLinesAsync(zip, "consents.ndjson", async after =>
                {
                    var rows = await db.Authorizations.AsNoTracking()
                        .Where(a => a.Type == OpenIddict.Abstractions.OpenIddictConstants.AuthorizationTypes.Permanent
                            && a.Status == OpenIddict.Abstractions.OpenIddictConstants.Statuses.Valid)
                        .Where(a => after == null || a.Id.CompareTo(Guid.Parse(after)) > 0)
                        .OrderBy(a => a.Id).Take(Batch).ToListAsync(cancellationToken);
                    return (rows.Select(a => (object)new
                    {
                        UserId = a.Subject,
                        ClientId = a.ApplicationId is { } id && clientIds.TryGetValue(id, out var clientId) ? clientId : null,
                        Scopes = a.Scopes is null ? [] : JsonSerializer.Deserialize<string[]>(a.Scopes) ?? [],
                        CreatedAt = a.CreationDate is { } created ? new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc)) : (DateTimeOffset?)null,
                    }).ToList(), rows.Count == Batch ? rows[^1].Id.ToString() : null);
                });

                // Sign-ups waiting for their link: the address and name given; never the password's hash or the link.
                counts["signups.ndjson"] = await WriteLinesAsync(zip, "signups.ndjson", async after =>
                {
                    var rows = await db.Set<PendingSignUp>().AsNoTracking().Where(p => after == null || p.Id.CompareTo(Guid.Parse(after)) > 0)
                        .OrderBy(p => p.Id).Take(Batch).ToListAsync(cancellationToken);
                    return (rows.Select(p => (object)new { p.Email, p.Name, p.TermsUrl, p.CreatedAt, p.ExpiresAt }).ToList(), rows.Count == Batch ? rows[^1].Id.ToString() : null);
                });

                counts["webhooks.ndjson"] = await WriteLinesAsync(zip, "webhooks.ndjson", async _ =>
                    ((await db.Set<Webhook>().AsNoTracking().OrderBy(w => w.CreatedAt).ToListAsync(cancellationToken))
                        .Select(w => (object)new { w.Id, w.Url, w.Events, w.CreatedAt, w.CreatedBy }).ToList(), null));

                counts["audit-events.ndjson"] = await WriteLinesAsync(zip, "audit-events.ndjson", async after =>
                {
                    var from = after is null ? 0 : long.Parse(after, System.Globalization.CultureInfo.InvariantCulture);
                    var rows = await db.Set<AuditEvent>().AsNoTracking().Where(e => e.Id > from).OrderBy(e => e.Id).Take(Batch).ToListAsync(cancellationToken);
                    return (rows.Select(e => (object)AuditApi.View(e)).ToList(), rows.Count == Batch ? rows[^1].Id.ToString(System.Globalization.CultureInfo.InvariantCulture) : null);
                });

                Write(zip, "manifest.json", new
                {
                    format = Format,
                    tenant = tenant.Id,
                    exportedAt = time.GetUtcNow(),
                    passwordHashes = withHashes ? "ASP.NET Core Identity, version 3 format (PBKDF2)" : null,
                    files = counts.Select(c => new { name = c.Key, records = c.Value }).Prepend(new { name = "policy.json", records = 1 }).Prepend(new { name = "tenant.json", records = 1 }),
                });
            }

            await audit.AdminActionAsync(http, AuditEventTypes.TenantExported, details: new { passwordHashes = withHashes, records = counts });
            file.Position = 0;
            http.Response.Headers.CacheControl = "no-store";
            return Results.File(file, "application/zip", $"{tenant.Id}-export-{time.GetUtcNow():yyyyMMdd'T'HHmmss'Z'}.zip");
        }
        catch
        {
            await file.DisposeAsync();
            throw;
        }
    }

    private static void Write(ZipArchive zip, string name, object value)
    {
        using var stream = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
        JsonSerializer.Serialize(stream, value, value.GetType(), Options);
    }

    /// <summary>Writes the records a reader gives, batch after batch (each with the key to read the next from), one a line.</summary>
    private static async Task<int> WriteLinesAsync(ZipArchive zip, string name, Func<string?, Task<(List<object> Records, string? Next)>> read)
    {
        using var stream = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
        var count = 0;
        string? after = null;
        do
        {
            var (records, next) = await read(after);
            foreach (var record in records)
            {
                JsonSerializer.Serialize(stream, record, record.GetType(), Options);
                stream.WriteByte((byte)'\n');
                count++;
            }

            after = next;
        }
        while (after is not null);

        return count;
    }

    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
