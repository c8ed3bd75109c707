using IdentityService.Audit;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages.Account;

/// <summary>
/// The apps a signed-in person has let use their account (a consent given, or a sign-in whose tokens may still be
/// valid), each with what it may read, and a button to remove its access: its refresh and access tokens stop
/// working, and a third-party app asks for consent again. This browser's session stays.
/// </summary>
public sealed class AppsModel(ConnectedApps apps, UserManager<AppUser> users, TenantContext tenant, AuditLog audit) : PageModel
{
    public AppUser? Account { get; private set; }

    public IReadOnlyList<ConnectedApp> Apps { get; private set; } = [];

    public string? Info { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        if ((Account = await HttpContext.SignedInAccountAsync(users)) is not { } user)
        {
            return Redirect(ReturnUrls.SignInHere(Request));
        }

        Apps = await apps.ListAsync(user, HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostRevokeAsync(string? clientId)
    {
        Response.Headers.CacheControl = "no-store";
        if ((Account = await HttpContext.SignedInAccountAsync(users)) is not { } user)
        {
            return Redirect(ReturnUrls.SignInHere(Request));
        }

        var listed = (await apps.ListAsync(user, HttpContext.RequestAborted)).FirstOrDefault(a => a.ClientId == clientId);
        if (listed is not null)
        {
            var revoked = await apps.RevokeAsync(user, listed.ClientId, CancellationToken.None);
            await audit.AccountActionAsync(HttpContext, tenant.Required, user, AuditEventTypes.UserAppRevoked, new { client = listed.ClientId, revoked });
            Info = $"{listed.Name} no longer has access to your account.";
        }

        Apps = await apps.ListAsync(user, HttpContext.RequestAborted);
        return Page();
    }
}
