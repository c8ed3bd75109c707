using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Policy;

/// <summary>
/// Reads and writes tenants' policies. The sign-in path reads them from memory; a change evicts the local
/// copy and tells the other replicas (through Redis when configured) to evict theirs. A cached policy is used for
/// <see cref="Ttl"/> at most after it was read (a safety net for a change no eviction reached). A tenant's policy in
/// use is read again in the background once its entry is <see cref="RefreshAfter"/> old (many tenants per query,
/// <see cref="BatchRefresher{TKey,TValue}"/>), so its requests do not wait for the database; read again (in the
/// background, or on a request past the TTL) and found unchanged, it keeps its entry and instance.
/// </summary>
public sealed class PolicyStore : IDisposable
{
    public const string Channel = "policy-changed";

    /// <summary>
    /// The document's JSON form: camelCase, unknown fields refused. Names are matched exactly, as a merge patch
    /// (RFC 7396) merges them: "Lockout" is no second name of "lockout" that would override it.
    /// </summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNameCaseInsensitive = false,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        MaxDepth = 16,
        Converters = { new LiteralStrings() },
    };

    /// <summary>
    /// A stored document's reading: a field an earlier version wrote and this one no longer has (such as
    /// <c>signUp.termsUrl</c>, which became <c>terms.url</c>) is skipped, and goes at the next change. Only what a
    /// caller sends is refused for an unknown field.
    /// </summary>
    private static readonly JsonSerializerOptions Stored = new(Json) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip };

    /// <summary>The longest a cached policy is used after it was read (from the injected clock).</summary>
    internal static readonly TimeSpan Ttl = TimeSpan.FromMinutes(5);

    /// <summary>The age at which a policy in use is read again in the background.</summary>
    internal static readonly TimeSpan RefreshAfter = TimeSpan.FromMinutes(4);

    /// <summary>
    /// How long an entry unused is kept. Past <see cref="Ttl"/> it is never used without a read; it is kept so that a
    /// policy read again unchanged keeps its instance rather than leaving it, long-lived, as garbage in the heap's
    /// oldest generation.
    /// </summary>
    internal static readonly TimeSpan Retention = TimeSpan.FromMinutes(30);

    private readonly IServiceScopeFactory _scopes;
    private readonly IInvalidationBus _bus;
    private readonly AuditLog _audit;
    private readonly TimeProvider _time;
    private readonly ILogger<PolicyStore> _logger;
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 100_000 });
    private readonly BatchRefresher<string, CachedPolicy> _refresher;
    private long _evictions;

    public PolicyStore(IServiceScopeFactory scopes, IInvalidationBus bus, AuditLog audit, TimeProvider time, ILogger<PolicyStore> logger)
    {
        _scopes = scopes;
        _bus = bus;
        _audit = audit;
        _time = time;
        _logger = logger;
        _refresher = new(LoadAsync, (cached, loaded) => cached.Digest.AsSpan().SequenceEqual(loaded.Digest), Apply,
            () => Volatile.Read(ref _evictions), time, logger);
        bus.Subscribe(Channel, Forget);
        // A tenant changed or deleted: a tenant created again under a deleted one's id must not be served its policy.
        bus.Subscribe(Tenancy.TenantDirectory.Channel, Forget);
    }

    public async ValueTask<TenantPolicy> GetAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(tenant.Id, out RefreshAheadEntry<CachedPolicy>? entry) && entry is not null && _refresher.Serve(tenant.Id, entry, Ttl, RefreshAfter))
        {
            return entry.Value.Policy;
        }

        return await LoadAsync(tenant, entry, cancellationToken);
    }

    /// <summary>When the cached policy of a tenant was last read (or found unchanged) in the database; null if none.</summary>
    internal DateTimeOffset? ReadAt(string tenantId) => _cache.TryGetValue(tenantId, out RefreshAheadEntry<CachedPolicy>? entry) ? entry?.LoadedAt : null;

    /// <summary>Reads a tenant's policy on a request's path: not cached, or its entry (<paramref name="stale"/>) past the TTL.</summary>
    private async Task<TenantPolicy> LoadAsync(Tenant tenant, RefreshAheadEntry<CachedPolicy>? stale, CancellationToken cancellationToken)
    {
        // Taken before the read: a read that raced with an eviction is not kept.
        var version = Volatile.Read(ref _evictions);
        using var scope = _scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var document = await db.Set<TenantPolicyRecord>().AsNoTracking().Select(r => r.Document).FirstOrDefaultAsync(cancellationToken);
        var read = Read(document, stale?.Value);
        if (_refresher.RenewIfUnchanged(stale, read, version) is { } kept)
        {
            return kept.Policy;
        }

        _refresher.Keep(_cache, tenant.Id, read, version, Retention);
        return read.Policy;
    }

    /// <summary>
    /// Reads the policies of tenants in use again, many per query (their tenants' filters set aside). A tenant without a
    /// row has the defaults; a stored document that no longer parses is left out, and its entry serves until its TTL.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, CachedPolicy>> LoadAsync(IReadOnlyList<string> tenantIds, CancellationToken cancellationToken)
    {
        using var scope = _scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var documents = await db.Set<TenantPolicyRecord>().IgnoreQueryFilters().AsNoTracking()
            .Where(r => tenantIds.Contains(r.TenantId))
            .ToDictionaryAsync(r => r.TenantId, r => r.Document, StringComparer.Ordinal, cancellationToken);
        var read = new Dictionary<string, CachedPolicy>(tenantIds.Count, StringComparer.Ordinal);
        foreach (var id in tenantIds)
        {
            _cache.TryGetValue(id, out RefreshAheadEntry<CachedPolicy>? entry);
            try
            {
                read[id] = Read(documents.GetValueOrDefault(id), entry?.Value);
            }
            catch (JsonException ex)
            {
                _logger.LogError(ex, "The stored policy of tenant {TenantId} does not parse.", id);
            }
        }

        return read;
    }

    /// <summary>
    /// A stored document (null: no row, the defaults) as a cached policy: <paramref name="current"/> itself if its digest
    /// is the same, so an unchanged policy is not parsed again; else the document parsed.
    /// </summary>
    private static CachedPolicy Read(string? document, CachedPolicy? current)
    {
        var digest = document is null ? [] : SHA256.HashData(Encoding.UTF8.GetBytes(document));
        if (current is not null && current.Digest.AsSpan().SequenceEqual(digest))
        {
            return current;
        }

        return new CachedPolicy(document is null ? new TenantPolicy() : JsonSerializer.Deserialize<TenantPolicy>(document, Stored)!, digest);
    }

    private void Apply(string tenantId, RefreshAheadEntry<CachedPolicy> entry, CachedPolicy? read, long version)
    {
        // Not read (a document that does not parse): the entry is not queued again, and serves until its TTL; the
        // request after that reads it on its path, and fails there as it would have without a cache.
        if (read is not null && !_refresher.Keep(_cache, tenantId, read, version, Retention))
        {
            // Not kept (an eviction raced with the read): a later request may queue it again.
            entry.RefreshFailed();
        }
    }

    private void Forget(string tenantId)
    {
        Interlocked.Increment(ref _evictions);
        _cache.Remove(tenantId);
    }

    /// <summary>Stores a validated policy and records the change in the audit log; returns the policy before it.</summary>
    public async Task<TenantPolicy> SaveAsync(Tenant tenant, TenantPolicy policy, string actor, string? ip, CancellationToken cancellationToken)
    {
        using var scope = _scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var now = _time.GetUtcNow();
        var record = await db.Set<TenantPolicyRecord>().FirstOrDefaultAsync(cancellationToken);
        var before = record is null ? new TenantPolicy() : JsonSerializer.Deserialize<TenantPolicy>(record.Document, Stored)!;
        var document = JsonSerializer.Serialize(policy, Json);
        if (record is null)
        {
            db.Add(new TenantPolicyRecord { Document = document, UpdatedAt = now });
        }
        else
        {
            record.Document = document;
            record.UpdatedAt = now;
        }

        // Recorded with the change itself: a policy never changes unrecorded.
        var change = db.Add(new AuditEvent
        {
            Time = now,
            Type = AuditEventTypes.PolicyChanged,
            Outcome = "succeeded",
            Ip = ip,
            Actor = actor,
            Details = new JsonObject
            {
                ["before"] = JsonSerializer.SerializeToNode(Redact(before), Json),
                ["after"] = JsonSerializer.SerializeToNode(Redact(policy), Json),
            }.ToJsonString(),
        }).Entity;
        await _audit.SaveAsync(tenant, db, change, cancellationToken);
        Forget(tenant.Id);
        await _bus.PublishAsync(Channel, tenant.Id);
        return before;
    }

    /// <summary>A copy without secrets, for answers and change records.</summary>
    public static TenantPolicy Redact(TenantPolicy policy)
    {
        var copy = JsonSerializer.Deserialize<TenantPolicy>(JsonSerializer.Serialize(policy, Json), Json)!;
        copy.Captcha.SecretKey = null;
        copy.Captcha.ApiKey = null;
        if (copy.Email.Smtp is { } smtp)
        {
            smtp.Password = null;
        }

        return copy;
    }

    /// <summary>JSON merge patch (RFC 7396): objects merge member by member, null removes, anything else replaces.</summary>
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject targetObject ? (JsonObject)targetObject.DeepClone() : new JsonObject();
        foreach (var (name, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(name);
            }
            else
            {
                result[name] = MergePatch(result[name], value);
            }
        }

        return result;
    }

    public void Dispose() => _cache.Dispose();

    /// <summary>A policy as read, and the SHA-256 of its stored document (empty: none stored, the defaults).</summary>
    private sealed class CachedPolicy(TenantPolicy policy, byte[] digest)
    {
        public TenantPolicy Policy { get; } = policy;

        public byte[] Digest { get; } = digest;
    }
}
