using System.Net;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Email;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace IdentityService.Users;

/// <summary>
/// Password reset by an emailed link: single-use, valid for the tenant's <c>passwordReset.linkLifetimeMinutes</c>
/// (30 by default). Asking never says whether the address has an account; a link is a random 256-bit token of
/// which only the hash is stored; using one sets the password, ends the account's grants and lockout, and spends
/// every link of the account. Each request and each reset is in the tenant's audit log.
/// </summary>
public sealed class PasswordResets(
    IdentityDb db, UserManager<AppUser> users, TenantContext tenant, PolicyStore policies, IProtectionStore protection, ILockoutStore lockouts,
    IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens, Mailer mailer, AuditLog audit, TimeProvider time)
{
    /// <summary>Links an account may be sent per hour: enough for a lost mail, too few to flood a mailbox.</summary>
    public const int LinksPerAccountPerHour = 5;

    /// <summary>Whether the tenant's mail can be sent (its own SMTP server, or the service's).</summary>
    public async Task<bool> AvailableAsync(CancellationToken cancellationToken) => mailer.IsConfiguredFor(await policies.GetAsync(tenant.Required, cancellationToken));

    /// <summary>Sends a reset link to the account with this email, if there is one; answers nothing either way.</summary>
    /// <param name="resetPage">The absolute URL of the tenant's reset page; the token is added as its query.</param>
    public async Task RequestAsync(string email, IPAddress ip, string resetPage, CancellationToken cancellationToken)
    {
        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        var entry = new AuditEvent
        {
            Type = AuditEventTypes.PasswordResetRequested,
            Outcome = "failed",
            Ip = ip.ToString(),
            Identifier = email.Length > 256 ? email[..256] : email,
        };

        // The sign-in page's limit per address and minute counts these too: asking is not a way around it.
        var limit = policy.RateLimits.SignInPerIpPerMinute;
        var user = email.Length is 0 or > 256 ? null : await users.FindByEmailAsync(email);
        if (limit > 0 && await Pipeline.Steps.EnforceSignInRateLimit.CountAsync(protection, tenant.Required.Id, ip, cancellationToken) > limit)
        {
            entry.Reason = "rate_limited";
        }
        else if (user is null)
        {
            entry.Reason = "unknown_account";
        }
        else if (user.Disabled)
        {
            entry.Reason = "account_disabled";
        }
        else if (await protection.IncrementAsync(tenant.Required.Id, $"rl:reset:{user.Id}", TimeSpan.FromHours(1), cancellationToken) > LinksPerAccountPerHour)
        {
            entry.Reason = "too_many_links";
        }
        else
        {
            var token = OpaqueTokens.New();
            var now = time.GetUtcNow();
            // The account's expired links go as a new one is made: the table holds only links that could still work.
            await db.InTurnAsync(c => db.Set<PasswordResetToken>().Where(t => t.UserId == user.Id && t.ExpiresAt <= now).ExecuteDeleteAsync(c), cancellationToken);
            var lifetime = TimeSpan.FromMinutes(policy.PasswordReset.LinkLifetimeMinutes);
            db.Add(new PasswordResetToken { Id = Guid.NewGuid(), UserId = user.Id, TokenHash = OpaqueTokens.Hash(token), CreatedAt = now, ExpiresAt = now + lifetime });
            await db.SaveChangesAsync(cancellationToken);
            var link = QueryHelpers.AddQueryString(resetPage, "token", token);
            var name = tenant.Required.DisplayName;
            var sent = mailer.Enqueue(policy, user.Email!, $"Set a new password for {name}",
                $"""
                Someone, probably you, asked to set a new password for your {name} account ({user.Email}).

                To choose a new password, open this link within {policy.PasswordReset.LinkLifetimeMinutes} minutes. It works once:

                {link}

                If you did not ask for this, ignore this message: your password stays as it is.
                """);
            entry.Outcome = sent ? "succeeded" : "failed";
            entry.Reason = sent ? null : "mail_not_sent";
        }

        entry.UserId = user?.Id;
        await audit.WriteAsync(tenant.Required, entry);
    }

    /// <summary>
    /// How strong a password being typed on a link's page is, for the page's live meter: its zxcvbn score and the
    /// tenant's minimum, or null for a link that is not valid.
    /// </summary>
    public async Task<(UserSecurity.Strength Strength, int Needed)?> StrengthAsync(string? token, string password, CancellationToken cancellationToken)
    {
        var user = await FindAsync(token, cancellationToken);
        if (user is null)
        {
            return null;
        }

        var rules = (await policies.GetAsync(tenant.Required, cancellationToken)).Passwords;
        var strength = UserSecurity.Meter(password, user, tenant.Required);
        return (strength, rules.MinStrength);
    }

    /// <summary>The account a link is for, while the link is unused and unexpired; null otherwise.</summary>
    public async Task<AppUser?> FindAsync(string? token, CancellationToken cancellationToken) =>
        (await FindTokenAsync(token, cancellationToken)).User;

    /// <summary>
    /// Sets the account's new password with a link: the password's rule violations, or none when it was set.
    /// A link that is unknown, used or expired gives null.
    /// </summary>
    public async Task<List<string>?> ResetAsync(string? token, string password, IPAddress ip, CancellationToken cancellationToken)
    {
        var (row, user) = await FindTokenAsync(token, cancellationToken);
        if (row is null || user is null)
        {
            return null;
        }

        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        var errors = await UserSecurity.CheckPasswordAsync(users, user, password, policy.Passwords, tenant.Required);
        if (errors.Count > 0)
        {
            return errors;
        }

        // The link is claimed before it is used: of two requests racing with it, one sets the password.
        if (await db.InTurnAsync(c => db.Set<PasswordResetToken>().Where(t => t.Id == row.Id).ExecuteDeleteAsync(c), cancellationToken) == 0)
        {
            return null;
        }

        user.PasswordHash = users.PasswordHasher.HashPassword(user, password);
        user.UpdatedAt = time.GetUtcNow();
        var result = await users.UpdateAsync(user);
        if (!result.Succeeded)
        {
            return [.. result.Errors.Select(e => e.Description)];
        }

        // Every link of the account is spent with this one, and the sign-ins made with the old password end, those
        // at their second step too.
        await db.InTurnAsync(c => db.Set<PasswordResetToken>().Where(t => t.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);
        await db.InTurnAsync(c => db.Set<Mfa.MfaChallenge>().Where(t => t.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);
        await users.UpdateSecurityStampAsync(user);
        await UserSecurity.RevokeGrantsAsync(user, authorizations, tokens);
        await lockouts.UnlockAsync(tenant.Required.Id, user.Id.ToString(), cancellationToken);
        await audit.WriteAsync(tenant.Required, new AuditEvent
        {
            Type = AuditEventTypes.PasswordResetCompleted,
            Outcome = "succeeded",
            Ip = ip.ToString(),
            UserId = user.Id,
        });
        return [];
    }

    private async Task<(PasswordResetToken? Row, AppUser? User)> FindTokenAsync(string? token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return (null, null);
        }

        var hash = OpaqueTokens.Hash(token);
        var row = await db.Set<PasswordResetToken>().AsNoTracking().SingleOrDefaultAsync(t => t.TokenHash == hash, cancellationToken);
        if (row is null || row.ExpiresAt <= time.GetUtcNow())
        {
            return (null, null);
        }

        var user = await users.FindByIdAsync(row.UserId.ToString());
        return user is null ? (null, null) : (row, user);
    }

}
