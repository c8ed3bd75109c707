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
/// copy and tells the other replicas (through Redis when configured) to evict theirs.
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

    private readonly IServiceScopeFactory _scopes;
    private readonly IInvalidationBus _bus;
    private readonly TimeProvider _time;
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 100_000 });

    public PolicyStore(IServiceScopeFactory scopes, IInvalidationBus bus, TimeProvider time)
    {
        _scopes = scopes;
        _bus = bus;
        _time = time;
        bus.Subscribe(Channel, tenantId => _cache.Remove(tenantId));
    }

    public async ValueTask<TenantPolicy> GetAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(tenant.Id, out TenantPolicy? cached) && cached is not null)
        {
            return cached;
        }

        using var scope = _scopes.CreateTenantScope(tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var record = await db.Set<TenantPolicyRecord>().AsNoTracking().FirstOrDefaultAsync(cancellationToken);
        var policy = record is null ? new TenantPolicy() : JsonSerializer.Deserialize<TenantPolicy>(record.Document, Json)!;

        // A safety net only: a change is evicted at once, here and (through the bus) on other replicas.
        _cache.Set(tenant.Id, policy, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(5) });
        return policy;
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
        _cache.Remove(tenant.Id);
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
}
