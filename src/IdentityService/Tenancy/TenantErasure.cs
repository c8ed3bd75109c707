using IdentityService.Data;
using IdentityService.Oidc;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Tenancy;

/// <summary>
/// Destroys a tenant and every row it owns: tokens, consents, clients, users, keys; then what the protections keep
/// for it outside the database (Redis counters, IP blocks, lockouts). Its issuer then answers 404.
/// </summary>
public sealed class TenantErasure(IServiceScopeFactory scopes, TenantDirectory directory, TenantOidcStateCache states, Protection.IProtectionStore protection)
{
    public async Task EraseAsync(string tenantId, CancellationToken cancellationToken)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var tenant = await db.Tenants.SingleAsync(t => t.Id == tenantId, cancellationToken);
        scope.ServiceProvider.GetRequiredService<TenantContext>().Set(tenant);

        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        // The query filters restrict every delete below to this tenant.
        await db.Tokens.ExecuteDeleteAsync(cancellationToken);
        await db.Authorizations.ExecuteDeleteAsync(cancellationToken);
        await db.Applications.ExecuteDeleteAsync(cancellationToken);
        await db.Set<TenantScope>().ExecuteDeleteAsync(cancellationToken);
        var userIds = db.Users.Select(u => u.Id);
        await db.UserRoles.Where(r => userIds.Contains(r.UserId)).ExecuteDeleteAsync(cancellationToken);
        await db.UserClaims.Where(c => userIds.Contains(c.UserId)).ExecuteDeleteAsync(cancellationToken);
        await db.UserLogins.Where(l => userIds.Contains(l.UserId)).ExecuteDeleteAsync(cancellationToken);
        await db.UserTokens.Where(t => userIds.Contains(t.UserId)).ExecuteDeleteAsync(cancellationToken);
        await db.UserPasskeys.Where(p => userIds.Contains(p.UserId)).ExecuteDeleteAsync(cancellationToken);
        await db.Set<Users.PasswordResetToken>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Users.PendingSignUp>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Mfa.MfaChallenge>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Mfa.UserAuthenticator>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Mfa.RecoveryCode>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Mfa.TrustedBrowser>().ExecuteDeleteAsync(cancellationToken);
        await db.Users.ExecuteDeleteAsync(cancellationToken);
        var roleIds = db.Roles.Select(r => r.Id);
        await db.RoleClaims.Where(c => roleIds.Contains(c.RoleId)).ExecuteDeleteAsync(cancellationToken);
        await db.Roles.ExecuteDeleteAsync(cancellationToken);
        await db.TenantKeys.ExecuteDeleteAsync(cancellationToken);
        await db.Set<Audit.AuditEvent>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Webhooks.WebhookDelivery>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Webhooks.Webhook>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Protection.AccountLockout>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Protection.UserSighting>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<Policy.TenantPolicyRecord>().ExecuteDeleteAsync(cancellationToken);
        await db.Set<RevokedToken>().ExecuteDeleteAsync(cancellationToken);
        await db.Tenants.Where(t => t.Id == tenantId).ExecuteDeleteAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);

        await directory.EvictAsync(tenantId);
        states.Evict(tenantId);
        await protection.ForgetTenantAsync(tenantId, cancellationToken);
    }
}
