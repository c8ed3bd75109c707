using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using IdentityService.Data;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Policy;

/// <summary>
/// Reads and writes tenants' policies. The sign-in path reads them from memory; a change evicts the local
/// copy and tells the other replicas (through Redis when configured) to evict theirs. A cached policy is used for
/// <see cref="Ttl"/> at most after it was read (a safety net for a change no eviction reached); read again then and
/// found unchanged, it keeps its instance.
/// </summary>
public sealed class PolicyStore : IDisposable
{
    public const string Channel = "policy-changed";

    /// <summary>The document's JSON form: camelCase, unknown fields refused.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        MaxDepth = 16,
        Converters = { new LiteralStrings() },
    };

    /// <summary>The longest a cached policy is used after it was read (from the injected clock).</summary>
    internal static readonly TimeSpan Ttl = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long an entry unused is kept. Past <see cref="Ttl"/> it is never used without a read; it is kept so that a
    /// policy read again unchanged keeps its instance rather than leaving it, long-lived, as garbage in the heap's
    /// oldest generation (every tenant in use, every five minutes).
    /// </summary>
    internal static readonly TimeSpan Retention = TimeSpan.FromMinutes(30);

    private readonly IServiceScopeFactory _scopes;
    private readonly IInvalidationBus _bus;
    private readonly TimeProvider _time;
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 100_000 });
    private long _evictions;

    public PolicyStore(IServiceScopeFactory scopes, IInvalidationBus bus, TimeProvider time)
    {
        _scopes = scopes;
        _bus = bus;
        _time = time;
        bus.Subscribe(Channel, Forget);
    }

    public async ValueTask<TenantPolicy> GetAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(tenant.Id, out Cached? cached) && cached is not null && _time.GetUtcNow() - cached.ReadAt < Ttl)
        {
            return cached.Policy;
        }

        // Taken before the read: a read that raced with an eviction is not kept.
        var version = Volatile.Read(ref _evictions);
        using var scope = _scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var record = await db.Set<TenantPolicyRecord>().AsNoTracking().FirstOrDefaultAsync(cancellationToken);
        var digest = record is null ? [] : SHA256.HashData(Encoding.UTF8.GetBytes(record.Document));
        if (cached is not null && cached.Digest.AsSpan().SequenceEqual(digest) && Volatile.Read(ref _evictions) == version)
        {
            // Unchanged: the entry is as fresh as this read.
            cached.Renew(_time.GetUtcNow());
            return cached.Policy;
        }

        var policy = record is null ? new TenantPolicy() : JsonSerializer.Deserialize<TenantPolicy>(record.Document, Json)!;
        if (Volatile.Read(ref _evictions) == version)
        {
            _cache.Set(tenant.Id, new Cached(policy, digest, _time.GetUtcNow()), new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = Retention });
            if (Volatile.Read(ref _evictions) != version)
            {
                // An eviction between the check and the Set: it may have run before the entry existed.
                _cache.Remove(tenant.Id);
            }
        }

        return policy;
    }

    private void Forget(string tenantId)
    {
        Interlocked.Increment(ref _evictions);
        _cache.Remove(tenantId);
    }

    /// <summary>Stores a validated policy and records the change; returns the policy before it.</summary>
    public async Task<TenantPolicy> SaveAsync(Tenant tenant, TenantPolicy policy, string actor, CancellationToken cancellationToken)
    {
        using var scope = _scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var now = _time.GetUtcNow();
        var record = await db.Set<TenantPolicyRecord>().FirstOrDefaultAsync(cancellationToken);
        var before = record is null ? new TenantPolicy() : JsonSerializer.Deserialize<TenantPolicy>(record.Document, Json)!;
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

        db.Add(new PolicyChange
        {
            Id = Guid.NewGuid(),
            Time = now,
            Actor = actor,
            Before = JsonSerializer.Serialize(Redact(before), Json),
            After = JsonSerializer.Serialize(Redact(policy), Json),
        });
        await db.SaveChangesAsync(cancellationToken);
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

    /// <summary>A policy as read, the SHA-256 of its stored document (empty: none stored), and when it was last read.</summary>
    private sealed class Cached(TenantPolicy policy, byte[] digest, DateTimeOffset readAt)
    {
        private long _readAtTicks = readAt.UtcTicks;

        public TenantPolicy Policy { get; } = policy;

        public byte[] Digest { get; } = digest;

        public DateTimeOffset ReadAt => new(Volatile.Read(ref _readAtTicks), TimeSpan.Zero);

        public void Renew(DateTimeOffset readAt) => Volatile.Write(ref _readAtTicks, readAt.UtcTicks);
    }
}
