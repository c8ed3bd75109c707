using IdentityService.Audit;
using IdentityService.Policy;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages.Account;

/// <summary>
/// A signed-in person deletes their own account, where the tenant's <c>account.allowDeletion</c> is on: with their
/// password (checked under the account's lockout), then the account goes as an admin's deletion takes it, the
/// browser is signed out, and the owner is mailed.
/// </summary>
public sealed class DeleteModel(
    PasswordChanges passwords, UserErasure erasure, UserManager<AppUser> users, PolicyStore policies, TenantContext tenant,
    Email.Mailer mailer, AuditLog audit) : PageModel
{
    [BindProperty]
    [FromForm]
    public string? CurrentPassword { get; set; }

    public AppUser? Account { get; private set; }

    public bool Allowed { get; private set; }

    public bool Done { get; private set; }

    public string? Error { get; private set; }

    private string LoginUrl => ReturnUrls.SignInHere(Request);

    public async Task<IActionResult> OnGetAsync() => await LoadAsync() is null ? Redirect(LoginUrl) : Page();

    public async Task<IActionResult> OnPostAsync()
    {
        var current = CurrentPassword ?? "";
        CurrentPassword = null;
        if (await LoadAsync() is not { } user)
        {
            return Redirect(LoginUrl);
        }

        if (!Allowed)
        {
            return Page();
        }

        if (!await passwords.CheckCurrentAsync(user, current, HttpContext, AuditEventTypes.UserDeletionRefused, HttpContext.RequestAborted))
        {
            Error = PasswordChanges.WrongPasswordMessage;
            return Page();
        }

        var result = await erasure.EraseAsync(user);
        if (!result.Succeeded)
        {
            Error = "Your account could not be deleted now. Try again later.";
            return Page();
        }

        await HttpContext.SignOutAsync(Session.Scheme);
        await audit.AccountActionAsync(HttpContext, tenant.Required, user, AuditEventTypes.UserDeleted, new { by = "the account's owner" });
        var policy = await policies.GetAsync(tenant.Required, HttpContext.RequestAborted);
        if (!string.IsNullOrEmpty(user.Email))
        {
            var name = tenant.Required.DisplayName;
            mailer.Enqueue(policy, user.Email, $"Your {name} account is deleted",
                $"""
                Your {name} account ({user.Email}) was deleted at your request. You can no longer sign in with it.

                If you did not ask for this, tell your administrator.
                """);
        }

        Done = true;
        return Page();
    }

    private async Task<AppUser?> LoadAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Account = await HttpContext.SignedInAccountAsync(users);
        Allowed = Account is not null && (await policies.GetAsync(tenant.Required, HttpContext.RequestAborted)).Account.AllowDeletion;
        return Account;
    }
}
