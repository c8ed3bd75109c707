using System.Net.Mail;
using IdentityService.Audit;
using IdentityService.Email;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Users;

/// <summary>
/// A signed-in person moves their account to a new email address: with their password (checked under the account's
/// lockout), a link is mailed to the new address, and the address changes (verified) only when that link's button
/// is pressed; the old address is then told. The link holds no server state: the account, its current address, the
/// new one, its security stamp and an expiry, protected with Data Protection for this tenant, so it stops working
/// once the address changes (it works once), once the stamp changes, and after <see cref="LinkLifetime"/>. An
/// address that already has an account is never named as such to the person asking: its owner is mailed instead,
/// and nothing changes.
/// </summary>
public sealed class EmailChanges(
    UserManager<AppUser> users, TenantContext tenant, PolicyStore policies, IProtectionStore protection, Mailer mailer, AuditLog audit,
    PasswordChanges passwords, IDataProtectionProvider dataProtection, TimeProvider time, Data.IdentityDb db)
{
    public static readonly TimeSpan LinkLifetime = TimeSpan.FromHours(24);

    /// <summary>Links an account may be sent per hour.</summary>
    public const int LinksPerAccountPerHour = 5;

    public enum Outcome
    {
        Changed,
        InvalidLink,
        AddressTaken,
    }

    private IDataProtector Protector => dataProtection.CreateProtector("IdentityService.Users.EmailChange.v1", tenant.Required.Id);

    /// <summary>Whether the tenant can send the link (its own SMTP server or the service's).</summary>
    public async Task<bool> AvailableAsync(CancellationToken cancellationToken) => mailer.IsConfiguredFor(await policies.GetAsync(tenant.Required, cancellationToken));

    /// <summary>
    /// Checks the password and the new address, then mails the link (or, where the address has an account, tells its
    /// owner). Answers the errors to show, none when the person is to look in the new address's mailbox.
    /// </summary>
    /// <param name="pages">The absolute URL of the tenant's pages, ending with '/'.</param>
    public async Task<IReadOnlyList<string>> RequestAsync(AppUser user, string newEmail, string password, string pages, HttpContext http, CancellationToken cancellationToken)
    {
        var email = newEmail.Trim();
        if (!EmailAddresses.IsAcceptable(email, out _))
        {
            return ["Enter an email address, such as name@example.com."];
        }

        if (string.Equals(users.NormalizeEmail(email), user.NormalizedEmail, StringComparison.Ordinal))
        {
            return ["This is your address already."];
        }

        if (!await passwords.CheckCurrentAsync(user, password, http, AuditEventTypes.UserEmailChangeRequested, cancellationToken))
        {
            return [PasswordChanges.WrongPasswordMessage];
        }

        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        var name = tenant.Required.DisplayName;
        if (await protection.IncrementAsync(tenant.Required.Id, $"rl:emailchange:{user.Id}", TimeSpan.FromHours(1), cancellationToken) > LinksPerAccountPerHour)
        {
            await audit.AccountActionAsync(http, tenant.Required, user, AuditEventTypes.UserEmailChangeRequested, new { sent = false, reason = "too_many_links" });
            return ["Too many links were sent to change this account's address. Try again in an hour."];
        }

        if (await users.FindByEmailAsync(email) is not null)
        {
            mailer.Enqueue(policy, email, $"Your {name} account",
                $"""
                Someone asked to move another {name} account to this address ({email}). This address already has an account, so nothing was changed.

                If you have forgotten its password, you can set a new one here:

                {pages}forgot-password
                """);
            await audit.AccountActionAsync(http, tenant.Required, user, AuditEventTypes.UserEmailChangeRequested, new { sent = false, reason = "existing_account" });
            return [];
        }

        var token = LinkTokens.Create(Protector, user.Id, time.GetUtcNow() + LinkLifetime, user.NormalizedEmail, email, user.SecurityStamp ?? "");
        mailer.Enqueue(policy, email, $"Confirm your new email address for {name}",
            $"""
            Someone, probably you, asked to use this address ({email}) for their {name} account instead of its current one.

            To confirm it, open this link within 24 hours:

            {QueryHelpers.AddQueryString(pages + "account/email/confirm", "token", token)}

            If you did not ask for this, ignore this message: nothing changes.
            """);
        await audit.AccountActionAsync(http, tenant.Required, user, AuditEventTypes.UserEmailChangeRequested, new { sent = true });
        return [];
    }

    /// <summary>
    /// The account and new address of a link, while it is unexpired, the account is enabled, and its address and
    /// security stamp are still the ones it was sent with: a new password, "sign out everywhere", a reset or being
    /// disabled (each changes the stamp) ends the links asked for before, as they end the sessions that asked.
    /// </summary>
    public async Task<(AppUser User, string NewEmail)?> FindAsync(string? token)
    {
        if (LinkTokens.Open(Protector, token, 3, time.GetUtcNow()) is not var (id, fields))
        {
            return null;
        }

        var user = await users.FindByIdAsync(id);
        return user is { Disabled: false } && user.NormalizedEmail == fields[0] && (user.SecurityStamp ?? "") == fields[2] ? (user, fields[1]) : null;
    }

    /// <summary>Moves the account of a link to its new address, verified, and tells the old address.</summary>
    /// <param name="pages">The absolute URL of the tenant's pages, ending with '/'.</param>
    public async Task<Outcome> ConfirmAsync(string? token, string pages, HttpContext http)
    {
        if (await FindAsync(token) is not var (user, email))
        {
            return Outcome.InvalidLink;
        }

        // Taken since the link was sent: Identity's unique-address check refuses it too, should both land at once.
        if (await users.FindByEmailAsync(email) is not null)
        {
            return Outcome.AddressTaken;
        }

        var old = user.Email;
        user.Email = email;
        user.UserName = email;
        user.EmailConfirmed = true;
        user.UpdatedAt = time.GetUtcNow();
        var result = await users.UpdateAsync(user);
        if (!result.Succeeded)
        {
            return result.Errors.Any(e => e.Code is "DuplicateEmail" or "DuplicateUserName") ? Outcome.AddressTaken : Outcome.InvalidLink;
        }

        // Reset links were mailed to the old address: whoever reads it must not set the password from now on.
        await db.InTurnAsync(c => db.Set<PasswordResetToken>().Where(t => t.UserId == user.Id).ExecuteDeleteAsync(c), http.RequestAborted);

        if (!string.IsNullOrEmpty(old))
        {
            var name = tenant.Required.DisplayName;
            mailer.Enqueue(await policies.GetAsync(tenant.Required, http.RequestAborted), old, $"Your {name} email address was changed",
                $"""
                The email address of your {name} account was changed from {old} to {email} on {time.GetUtcNow():yyyy-MM-dd HH:mm} UTC. You sign in with the new address from now on.

                If you did not change it, tell your administrator at once.
                """);
        }

        // An admin's change of the address is user.updated too: webhook receivers keeping a copy of the user follow both.
        await audit.AccountActionAsync(http, tenant.Required, user, AuditEventTypes.UserUpdated, new { fields = new[] { "email", "emailVerified" }, via = "self" });
        return Outcome.Changed;
    }
}
