using System.Text.Json;
using IdentityService.Data;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Oidc;

/// <summary>
/// CORS for browser apps: a tenant's endpoints answer a cross-origin request only from an origin that one
/// of the tenant's clients lists in its allowed origins. The lists are cached per tenant for a short time.
/// </summary>
internal sealed class ClientCorsPolicyProvider : ICorsPolicyProvider, IDisposable
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(30);
    private readonly MemoryCache _origins = new(new MemoryCacheOptions { SizeLimit = 10_000 });

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
            var db = context.RequestServices.GetRequiredService<IdentityDb>();
            var lists = await db.Applications.AsNoTracking().Where(a => a.AllowedOrigins != null)
                .Select(a => a.AllowedOrigins!).ToListAsync(context.RequestAborted);
            allowed = lists.SelectMany(l => JsonSerializer.Deserialize<List<string>>(l) ?? []).ToHashSet(StringComparer.OrdinalIgnoreCase);
            _origins.Set(state.Tenant.Id, allowed, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Ttl });
        }

        return allowed.Contains(origin)
            ? new CorsPolicyBuilder().WithOrigins(origin).AllowAnyHeader().WithMethods(HttpMethods.Get, HttpMethods.Post).SetPreflightMaxAge(TimeSpan.FromHours(1)).Build()
            : null;
    }

    public void Dispose() => _origins.Dispose();
}
