using IdentityService.Audit;
using IdentityService.Email;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;

namespace IdentityService.Users;

/// <summary>
/// Verifies the address of an account whose email is not verified yet (one an admin made with
/// <c>emailVerified</c> false), by a link mailed to it from the security page. The link holds no server state: the
/// account, its address and an expiry, protected with Data Protection for this tenant; it stops working when the
/// address changes, and after <see cref="LinkLifetime"/> by the injected clock. Verifying twice does nothing more.
/// </summary>
public sealed class EmailVerifications(
    UserManager<AppUser> users, TenantContext tenant, PolicyStore policies, IProtectionStore protection, Mailer mailer, AuditLog audit,
    IDataProtectionProvider dataProtection, TimeProvider time)
{
    public static readonly TimeSpan LinkLifetime = TimeSpan.FromHours(24);

    /// <summary>Links an account may be sent per hour.</summary>
    public const int LinksPerAccountPerHour = 5;

    private IDataProtector Protector => dataProtection.CreateProtector("IdentityService.Users.EmailVerification.v1", tenant.Required.Id);

    /// <summary>Whether this account can be sent a link now: an address not verified, and mail the tenant can send.</summary>
    public async Task<bool> CanVerifyAsync(AppUser user, CancellationToken cancellationToken) =>
        !user.EmailConfirmed && !string.IsNullOrEmpty(user.Email) && mailer.IsConfiguredFor(await policies.GetAsync(tenant.Required, cancellationToken));

    /// <summary>Mails the account's address a link that verifies it; false when none could be sent (or too many were).</summary>
    /// <param name="pages">The absolute URL of the tenant's pages, ending with '/'.</param>
    public async Task<bool> SendAsync(AppUser user, string pages, CancellationToken cancellationToken)
    {
        if (!await CanVerifyAsync(user, cancellationToken)
            || await protection.IncrementAsync(tenant.Required.Id, $"rl:verify:{user.Id}", TimeSpan.FromHours(1), cancellationToken) > LinksPerAccountPerHour)
        {
            return false;
        }

        var token = LinkTokens.Create(Protector, user.Id, time.GetUtcNow() + LinkLifetime, user.NormalizedEmail);
        var link = QueryHelpers.AddQueryString(pages + "verify-email", "token", token);
        var name = tenant.Required.DisplayName;
        return mailer.Enqueue(await policies.GetAsync(tenant.Required, cancellationToken), user.Email!, $"Verify your email address for {name}",
            $"""
            Someone, probably you, asked to verify this address ({user.Email}) for a {name} account.

            To verify it, open this link within 24 hours:

            {link}

            If you did not ask for this, ignore this message.
            """);
    }

    /// <summary>The account a link verifies, while the link is unexpired and the account's address is the one it was sent to.</summary>
    public async Task<AppUser?> FindAsync(string? token)
    {
        if (LinkTokens.Open(Protector, token, 1, time.GetUtcNow()) is not var (id, fields))
        {
            return null;
        }

        var user = await users.FindByIdAsync(id);
        return user is not null && user.NormalizedEmail == fields[0] ? user : null;
    }

    /// <summary>Verifies the address of a link; false for a link that does not work (expired, or the address changed).</summary>
    public async Task<bool> VerifyAsync(string? token, HttpContext http)
    {
        if (await FindAsync(token) is not { } user)
        {
            return false;
        }

        if (!user.EmailConfirmed)
        {
            user.EmailConfirmed = true;
            user.UpdatedAt = time.GetUtcNow();
            if (!(await users.UpdateAsync(user)).Succeeded)
            {
                return false;
            }

            await audit.AccountActionAsync(http, tenant.Required, user, AuditEventTypes.UserEmailVerified, new { email = user.Email });
        }

        return true;
    }
}
