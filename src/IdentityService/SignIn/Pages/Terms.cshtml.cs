using IdentityService.Audit;
using IdentityService.Policy;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// Where the authorization endpoint sends a signed-in person whose account has not accepted the tenant's current
/// terms of service (<c>terms.askAtSignIn</c>): the terms' link and a button; accepting records which terms and
/// when, and goes on to the app. Without accepting, the app gets no code.
/// </summary>
public sealed class TermsModel(UserManager<AppUser> users, PolicyStore policies, TenantContext tenant, AuditLog audit, TimeProvider time) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string? TermsUrl { get; private set; }

    /// <summary>Whether the account accepted older terms (the page says they changed) or none yet.</summary>
    public bool Changed { get; private set; }

    public async Task<IActionResult> OnGetAsync() => await LoadAsync() is null ? Redirect(ReturnUrls.SignInHere(Request)) : Page();

    public async Task<IActionResult> OnPostAsync()
    {
        if (await LoadAsync() is not { } user)
        {
            return Redirect(ReturnUrls.SignInHere(Request));
        }

        if (TermsUrl is not null && user.AcceptedTermsUrl != TermsUrl)
        {
            user.AcceptedTermsUrl = TermsUrl;
            user.TermsAcceptedAt = time.GetUtcNow();
            user.UpdatedAt = user.TermsAcceptedAt;
            if (!(await users.UpdateAsync(user)).Succeeded)
            {
                return Page();
            }

            await audit.AccountActionAsync(HttpContext, tenant.Required, user, AuditEventTypes.UserTermsAccepted, new { terms = TermsUrl });
        }

        return LocalRedirect(ReturnUrls.Sanitize(Request, ReturnUrl));
    }

    private async Task<AppUser?> LoadAsync()
    {
        Response.Headers.CacheControl = "no-store";
        var user = await HttpContext.SignedInAccountAsync(users);
        TermsUrl = (await policies.GetAsync(tenant.Required, HttpContext.RequestAborted)).Terms.Url;
        Changed = user?.AcceptedTermsUrl is not null;
        return user;
    }
}
