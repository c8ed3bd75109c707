using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Email;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.SignIn;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Users;

/// <summary>
/// A signed-in person changes their password with their current one. The current password is checked under the
/// account's lockout, as at sign-in, so a session left open is no way to guess it. A change meets the tenant's
/// password rules, ends the account's other sign-ins and grants (as a reset does) and its reset links, keeps the
/// requesting browser signed in, and is mailed to the account's owner.
/// </summary>
public sealed class PasswordChanges(
    IdentityDb db, UserManager<AppUser> users, PasswordSignIn passwords, ILockoutStore lockouts, PolicyStore policies, TenantContext tenant,
    AccountSessions sessions, Mailer mailer, AuditLog audit, TimeProvider time)
{
    public const string WrongPasswordMessage = "Your current password is not right.";

    /// <summary>Changes the password: what is wrong (the page's messages), or nothing when it was changed.</summary>
    /// <param name="pages">The absolute URL of the tenant's pages, ending with '/' (for the mail's link).</param>
    public async Task<List<string>> ChangeAsync(AppUser user, string current, string next, HttpContext http, string pages, CancellationToken cancellationToken)
    {
        if (!await CheckCurrentAsync(user, current, http, AuditEventTypes.PasswordChanged, cancellationToken))
        {
            return [WrongPasswordMessage];
        }

        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        if (next == current)
        {
            return ["Choose a password other than your current one."];
        }

        var errors = await UserSecurity.CheckPasswordAsync(users, user, next, policy.Passwords, tenant.Required);
        if (errors.Count > 0)
        {
            return errors;
        }

        user.PasswordHash = users.PasswordHasher.HashPassword(user, next);
        user.UpdatedAt = time.GetUtcNow();
        var result = await users.UpdateAsync(user);
        if (!result.Succeeded)
        {
            return [.. result.Errors.Select(e => e.Description)];
        }

        // As after a reset: the sessions and grants made with the old password end, and so do its reset links;
        // this browser stays signed in.
        await sessions.EndOthersAsync(user, http);
        await db.InTurnAsync(c => db.Set<PasswordResetToken>().Where(t => t.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);
        if (!string.IsNullOrEmpty(user.Email))
        {
            var name = tenant.Required.DisplayName;
            mailer.Enqueue(policy, user.Email, $"Your {name} password was changed",
                $"""
                The password of your {name} account ({user.Email}) was changed on {time.GetUtcNow():yyyy-MM-dd HH:mm} UTC. Devices signed in with the old one are signed out.

                If you did not change it, someone else knows your password: set a new one at once here, and tell your administrator:

                {pages}forgot-password
                """);
        }

        await audit.AccountActionAsync(http, tenant.Required, user, AuditEventTypes.PasswordChanged, new { otherSessionsEnded = true });
        return [];
    }

    /// <summary>
    /// Whether this is the account's current password, checked under the account's lockout as at sign-in; a wrong
    /// one (or any, while the account is locked) is written to the log under <paramref name="auditType"/>.
    /// </summary>
    public async Task<bool> CheckCurrentAsync(AppUser user, string current, HttpContext http, string auditType, CancellationToken cancellationToken)
    {
        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        // This browser signed in to the account: in smart mode it counts with the account's familiar devices.
        var key = policy.Lockout.Mode == LockoutModes.Smart ? $"{user.Id}:familiar" : user.Id.ToString();
        var slot = await lockouts.BeginAttemptAsync(tenant.Required.Id, key, policy.Lockout.MaxFailedAttempts, cancellationToken);
        if (slot == AttemptSlot.Locked)
        {
            passwords.HashDummy(current);
            await FailedAsync(user, http, auditType, "account_locked");
            return false;
        }

        var verified = false;
        try
        {
            verified = await passwords.VerifyAsync(user, current);
        }
        finally
        {
            await lockouts.CompleteAttemptAsync(tenant.Required.Id, key, verified, policy.Lockout.MaxFailedAttempts,
                TimeSpan.FromMinutes(policy.Lockout.LockoutMinutes), CancellationToken.None);
        }

        if (!verified)
        {
            await FailedAsync(user, http, auditType, "wrong_password");
        }

        return verified;
    }

    private Task FailedAsync(AppUser user, HttpContext http, string type, string reason) =>
        audit.WriteAsync(tenant.Required, new AuditEvent
        {
            Type = type,
            Outcome = "failed",
            Reason = reason,
            UserId = user.Id,
            Identifier = user.Email,
            Ip = IpRanges.ClientOf(http).ToString(),
            Actor = $"user:{user.Id}@{tenant.Required.Id}",
        });
}
