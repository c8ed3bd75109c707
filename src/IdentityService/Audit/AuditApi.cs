using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Data;
using IdentityService.Management;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Audit;

/// <summary>
/// <c>/api/v1/tenants/{tenant}/audit-events</c>: the tenant's audit log, newest first and paged, and its export
/// (NDJSON or CSV, oldest first, streamed in batches so that a log of any length is never held in memory).
/// </summary>
internal static class AuditApi
{
    private const int ExportBatch = 500;

    /// <summary>An export is a file, not a page: characters are written as they are, not escaped for HTML.</summary>
    private static readonly JsonSerializerOptions ExportJson = new(AuditLog.Json) { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static RouteGroupBuilder MapAudit(this RouteGroupBuilder api)
    {
        var audit = api.MapGroup("/tenants/{tenant}/audit-events").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        audit.MapGet("", ListAsync);
        audit.MapGet("/export", ExportAsync);
        return api;
    }

    private static async Task<IResult> ListAsync(HttpContext http, IdentityDb db)
    {
        var (limit, after, pagingError) = Paging.Read(http.Request);
        if (pagingError is not null)
        {
            return pagingError;
        }

        long? before = null;
        if (after is not null)
        {
            if (!long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                return Problems.Validation("cursor", "cursor is not one this API gave.");
            }

            before = id;
        }

        var (query, error) = Filter(db, http.Request.Query);
        if (error is not null)
        {
            return error;
        }

        if (before is { } last)
        {
            query = query.Where(e => e.Id < last);
        }

        var rows = await query.OrderByDescending(e => e.Id).Take(limit + 1).ToListAsync(http.RequestAborted);
        return Results.Ok(Paging.Create(rows, limit, e => e.Id.ToString(CultureInfo.InvariantCulture), View));
    }

    private static async Task<IResult> ExportAsync(HttpContext http, IdentityDb db, TenantContext tenantContext, AuditLog audit)
    {
        var format = http.Request.Query["format"].ToString();
        if (format is not ("" or "ndjson" or "csv"))
        {
            return Problems.Validation("format", "format must be ndjson or csv.");
        }

        var (query, error) = Filter(db, http.Request.Query);
        if (error is not null)
        {
            return error;
        }

        // The export takes what was logged before it began; then it is logged itself (it carries addresses, typed
        // identifiers and user agents), before a byte goes out.
        var upTo = await query.OrderByDescending(e => e.Id).Select(e => (long?)e.Id).FirstOrDefaultAsync(http.RequestAborted) ?? 0;
        query = query.Where(e => e.Id <= upTo);
        var filters = http.Request.Query.Where(q => q.Key is "from" or "to" or "type" or "userId").ToDictionary(q => q.Key, q => q.Value.ToString());
        await audit.AdminActionAsync(http, AuditEventTypes.AuditExported, details: new { format = format == "csv" ? "csv" : "ndjson", filters });

        var csv = format == "csv";
        var response = http.Response;
        response.ContentType = csv ? "text/csv; charset=utf-8" : "application/x-ndjson";
        response.Headers.ContentDisposition = $"attachment; filename=\"audit-events-{tenantContext.Required.Id}.{(csv ? "csv" : "ndjson")}\"";
        response.Headers.CacheControl = "no-store";
        var body = response.BodyWriter.AsStream();
        if (csv)
        {
            await body.WriteAsync(Encoding.UTF8.GetBytes(AuditCsv.Header), http.RequestAborted);
        }

        var next = 0L;
        while (true)
        {
            var from = next;
            var batch = await query.Where(e => e.Id > from).OrderBy(e => e.Id).Take(ExportBatch).ToListAsync(http.RequestAborted);
            foreach (var entry in batch)
            {
                var view = View(entry);
                var line = csv ? AuditCsv.Line(view, ExportJson) : view.ToJsonString(ExportJson) + "\n";
                await body.WriteAsync(Encoding.UTF8.GetBytes(line), http.RequestAborted);
            }

            await body.FlushAsync(http.RequestAborted);
            if (batch.Count < ExportBatch)
            {
                return Results.Empty;
            }

            next = batch[^1].Id;
        }
    }

    /// <summary>The log's entries that match the query's filters; an error names the bad filter.</summary>
    private static (IQueryable<AuditEvent> Query, IResult? Error) Filter(IdentityDb db, IQueryCollection query)
    {
        var events = db.Set<AuditEvent>().AsNoTracking();
        if (query.TryGetValue("from", out var rawFrom))
        {
            if (!TryReadTime(rawFrom, out var from))
            {
                return (events, Problems.Validation("from", "from must be an RFC 3339 date and time with its offset, e.g. 2026-01-31T08:00:00Z."));
            }

            events = events.Where(e => e.Time >= from);
        }

        if (query.TryGetValue("to", out var rawTo))
        {
            if (!TryReadTime(rawTo, out var to))
            {
                return (events, Problems.Validation("to", "to must be an RFC 3339 date and time with its offset, e.g. 2026-01-31T08:00:00Z."));
            }

            events = events.Where(e => e.Time < to);
        }

        if (query.TryGetValue("type", out var rawType))
        {
            var type = rawType.ToString();
            if (type.EndsWith(".*", StringComparison.Ordinal) && AuditEventTypes.All.Any(t => t.StartsWith(type[..^1], StringComparison.Ordinal)))
            {
                var prefix = type[..^1];
                events = events.Where(e => e.Type.StartsWith(prefix));
            }
            else if (AuditEventTypes.All.Contains(type))
            {
                events = events.Where(e => e.Type == type);
            }
            else
            {
                return (events, Problems.Validation("type", "type must be an event type (such as signin.failed) or a family of them (such as signin.*)."));
            }
        }

        if (query.TryGetValue("userId", out var rawUser))
        {
            if (!Guid.TryParse(rawUser, out var userId))
            {
                return (events, Problems.Validation("userId", "userId must be a user's id."));
            }

            events = events.Where(e => e.UserId == userId);
        }

        if (query.TryGetValue("ip", out var rawIp))
        {
            if (!IPAddress.TryParse(rawIp.ToString(), out var address) || rawIp.ToString().Contains('/', StringComparison.Ordinal))
            {
                return (events, Problems.Validation("ip", "ip must be an IPv4 or IPv6 address."));
            }

            var ip = IpRanges.Normalize(address).ToString();
            events = events.Where(e => e.Ip == ip);
        }

        if (query.TryGetValue("outcome", out var rawOutcome))
        {
            var outcome = rawOutcome.ToString();
            if (outcome is not ("succeeded" or "failed" or "challenged"))
            {
                return (events, Problems.Validation("outcome", "outcome must be succeeded, failed or challenged."));
            }

            events = events.Where(e => e.Outcome == outcome);
        }

        return (events, null);
    }

    private static bool TryReadTime(string? value, out DateTimeOffset time)
    {
        time = default;
        // RFC 3339: a date, a time and an offset (Z or ±hh:mm); a bare date or a time without offset is ambiguous.
        if (string.IsNullOrEmpty(value) || value.Length < 20 || !(value.EndsWith('Z') || value.EndsWith('z') || value[^6] is '+' or '-')
            || !DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out time))
        {
            return false;
        }

        time = time.ToUniversalTime();
        return true;
    }

    /// <summary>An entry as the API shows it: the fields the contract names, and what else it holds under details.</summary>
    internal static JsonObject View(AuditEvent entry)
    {
        var view = new JsonObject
        {
            ["id"] = entry.Id.ToString(CultureInfo.InvariantCulture),
            ["time"] = entry.Time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture),
            ["type"] = entry.Type,
            ["outcome"] = entry.Outcome,
        };
        Add(view, "ip", entry.Ip);
        Add(view, "userId", entry.UserId?.ToString());
        Add(view, "clientId", entry.ClientId);
        Add(view, "actor", entry.Actor);
        var details = entry.Details is null ? new JsonObject() : JsonNode.Parse(entry.Details) as JsonObject ?? new JsonObject();
        Add(details, "identifier", entry.Identifier);
        Add(details, "reason", entry.Reason);
        Add(details, "decidedBy", entry.DecidedBy);
        Add(details, "country", entry.Country);
        Add(details, "userAgent", entry.UserAgent);
        if (entry.Trace is not null)
        {
            details["steps"] = JsonNode.Parse(entry.Trace);
        }

        if (details.Count > 0)
        {
            view["details"] = details;
        }

        return view;
    }

    private static void Add(JsonObject target, string name, string? value)
    {
        if (value is not null)
        {
            target[name] = value;
        }
    }
}
