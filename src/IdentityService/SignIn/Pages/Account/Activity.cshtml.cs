using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.SignIn.Pages.Account;

/// <summary>
/// A signed-in person's recent security activity, from the tenant's audit log: the account's last sign-ins (refused
/// ones included, with where they came from), and the changes made to its password, address, second factors,
/// sessions and apps, so that a person sees a sign-in that was not theirs.
/// </summary>
public sealed class ActivityModel(IdentityDb db, UserManager<AppUser> users) : PageModel
{
    /// <summary>How many entries the page shows, newest first.</summary>
    public const int Shown = 30;

    /// <summary>What each kind of entry says to the person.</summary>
    private static readonly Dictionary<string, (string Succeeded, string Failed)> Texts = new(StringComparer.Ordinal)
    {
        [AuditEventTypes.SignInSucceeded] = ("Signed in", "Signed in"),
        [AuditEventTypes.SignInFailed] = ("Sign-in refused", "Sign-in refused"),
        [AuditEventTypes.SignInChallenged] = ("Password right, second step asked", "Password right, second step asked"),
        [AuditEventTypes.PasswordChanged] = ("Password changed", "Password change refused"),
        [AuditEventTypes.PasswordResetRequested] = ("Password reset link sent", "Password reset asked, no link sent"),
        [AuditEventTypes.PasswordResetCompleted] = ("Password set from a reset link", "Password reset refused"),
        [AuditEventTypes.UserEmailVerified] = ("Email address verified", "Email address verification refused"),
        [AuditEventTypes.UserEmailChangeRequested] = ("Change of email address asked", "Change of email address refused"),
        [AuditEventTypes.UserUpdated] = ("Account details changed", "Account details change refused"),
        [AuditEventTypes.UserCreated] = ("Account created", "Account creation refused"),
        [AuditEventTypes.UserUnlocked] = ("Account unlocked by an administrator", "Account unlock refused"),
        [AuditEventTypes.MfaEnrolled] = ("Second factor added", "Second factor refused"),
        [AuditEventTypes.MfaRemoved] = ("Second factor removed", "Second factor removal refused"),
        [AuditEventTypes.MfaRecoveryCodesCreated] = ("New recovery codes made", "New recovery codes refused"),
        [AuditEventTypes.UserSessionsEnded] = ("Signed out everywhere", "Sign-out refused"),
        [AuditEventTypes.UserAppRevoked] = ("Access of an app removed", "Removal of an app's access refused"),
    };

    public sealed record Entry(DateTimeOffset Time, string What, bool Succeeded, string? Ip, string? Country, string? Browser, string? App);

    public AppUser? Account { get; private set; }

    public IReadOnlyList<Entry> Entries { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        if ((Account = await HttpContext.SignedInAccountAsync(users)) is not { } user)
        {
            return Redirect(ReturnUrls.SignInHere(Request));
        }

        var types = Texts.Keys.ToList();
        var rows = await db.Set<AuditEvent>().AsNoTracking()
            .Where(e => e.UserId == user.Id && types.Contains(e.Type))
            .OrderByDescending(e => e.Id).Take(Shown)
            .Select(e => new { e.Time, e.Type, e.Outcome, e.Ip, e.Country, e.UserAgent, e.ClientId })
            .ToListAsync(HttpContext.RequestAborted);
        Entries = rows.Select(e =>
        {
            var succeeded = e.Outcome == "succeeded";
            var (ok, failed) = Texts[e.Type];
            return new Entry(e.Time, succeeded ? ok : failed, succeeded, e.Ip, e.Country, UserAgents.Describe(e.UserAgent), e.ClientId);
        }).ToList();
        return Page();
    }

}
