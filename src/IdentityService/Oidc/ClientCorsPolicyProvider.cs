using System.Text.Json;
using IdentityService.Data;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Oidc;

/// <summary>
/// CORS for browser apps: a tenant's endpoints answer a cross-origin request only from an origin that one
/// of the tenant's clients lists in its allowed origins. The lists are cached per tenant for a short time,
/// and forgotten at once when one of the tenant's clients, or the tenant, changes (on every replica, through the
/// same invalidation as <see cref="ClientCache"/>): a removed origin stops working with the change.
/// </summary>
internal sealed class ClientCorsPolicyProvider : ICorsPolicyProvider, IDisposable
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(30);
    private readonly MemoryCache _origins = new(new MemoryCacheOptions { SizeLimit = 10_000 });
    private long _evictions;

    public ClientCorsPolicyProvider(IInvalidationBus bus)
    {
        // "{tenant}/{clientId}" on the clients' channel; a tenant id never contains '/'.
        bus.Subscribe(ClientCache.Channel, message =>
        {
            var slash = message.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0)
            {
                Forget(message[..slash]);
            }
        });
        bus.Subscribe(TenantDirectory.Channel, Forget);
    }

    public async Task<CorsPolicy?> GetPolicyAsync(HttpContext context, string? policyName)
    {
        var state = context.Features.Get<TenantOidcState>();
        string? origin = context.Request.Headers.Origin;
        if (state is null || string.IsNullOrEmpty(origin))
        {
            return null;
        }

        if (!_origins.TryGetValue(state.Tenant.Id, out HashSet<string>? allowed) || allowed is null)
        {
            // A list read while a change was evicting is used for this request but not kept.
            var version = Volatile.Read(ref _evictions);
            var db = context.RequestServices.GetRequiredService<IdentityDb>();
            var lists = await db.Applications.AsNoTracking().Where(a => a.AllowedOrigins != null)
                .Select(a => a.AllowedOrigins!).ToListAsync(context.RequestAborted);
            allowed = lists.SelectMany(l => JsonSerializer.Deserialize<List<string>>(l) ?? []).ToHashSet(StringComparer.OrdinalIgnoreCase);
            if (Volatile.Read(ref _evictions) == version)
            {
                _origins.Set(state.Tenant.Id, allowed, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Ttl });
                if (Volatile.Read(ref _evictions) != version)
                {
                    _origins.Remove(state.Tenant.Id);
                }
            }
        }

        return allowed.Contains(origin)
            ? new CorsPolicyBuilder().WithOrigins(origin).AllowAnyHeader().WithMethods(HttpMethods.Get, HttpMethods.Post).SetPreflightMaxAge(TimeSpan.FromHours(1)).Build()
            : null;
    }

    private void Forget(string tenantId)
    {
        Interlocked.Increment(ref _evictions);
        _origins.Remove(tenantId);
    }

    public void Dispose() => _origins.Dispose();
}
