using System.Net;
using IdentityService.Audit;
using IdentityService.Management;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;

namespace IdentityService.Protection;

/// <summary>Lifting what the protections set: active IP blocks, and an account's lockout.</summary>
internal static class ProtectionApi
{
    public static RouteGroupBuilder MapProtection(this RouteGroupBuilder api)
    {
        var tenant = api.MapGroup("/tenants/{tenant}").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        tenant.MapGet("/ip-blocks", ListBlocksAsync);
        tenant.MapDelete("/ip-blocks/{ip}", LiftBlockAsync);
        tenant.MapPost("/users/{userId}/unlock", UnlockAsync);
        return api;
    }

    /// <summary>Active blocks in the order of their addresses, paged as every list is (the store answers them all).</summary>
    private static async Task<IResult> ListBlocksAsync(HttpContext http, TenantContext tenantContext, IProtectionStore store)
    {
        var (limit, after, error) = Paging.Read(http.Request);
        if (error is not null)
        {
            return error;
        }

        var blocks = (await store.ListBlocksAsync(tenantContext.Required.Id, http.RequestAborted))
            .Where(b => after is null || string.CompareOrdinal(b.Ip, after) > 0)
            .OrderBy(b => b.Ip, StringComparer.Ordinal)
            .Take(limit + 1)
            .ToList();
        return Results.Ok(Paging.Create(blocks, limit, b => b.Ip, b => b));
    }

    private static async Task<IResult> LiftBlockAsync(HttpContext http, string ip, TenantContext tenantContext, IProtectionStore store, AuditLog audit)
    {
        // An address, or a block as the list names it (an IPv6 /64, its slash escaped or not): any address in it.
        ip = Uri.UnescapeDataString(ip);
        if (!IPAddress.TryParse(ip.EndsWith("/64", StringComparison.Ordinal) ? ip[..^3] : ip, out var address))
        {
            return Problems.Validation("ip", "Not an IP address.");
        }

        var blocked = IpRanges.ProtectionKeyOf(address);
        if (!await store.UnblockAsync(tenantContext.Required.Id, blocked, http.RequestAborted))
        {
            return Problems.NotFound("ip_block_not_found", "This address is not blocked.");
        }

        await audit.AdminActionAsync(http, AuditEventTypes.IpBlockLifted, details: new { blockedIp = blocked });
        return Results.NoContent();
    }

    private static async Task<IResult> UnlockAsync(HttpContext http, string userId, TenantContext tenantContext, UserManager<AppUser> users, ILockoutStore lockouts, AuditLog audit)
    {
        var user = Guid.TryParse(userId, out var id) ? await users.FindByIdAsync(id.ToString()) : null;
        if (user is null)
        {
            return Problems.NotFound("user_not_found", "No user has this id in this tenant.");
        }

        await lockouts.UnlockAsync(tenantContext.Required.Id, user.Id.ToString(), http.RequestAborted);
        await audit.AdminActionAsync(http, AuditEventTypes.UserUnlocked, userId: user.Id);
        return Results.NoContent();
    }
}
