using IdentityService.Oidc;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace IdentityService.SignIn.Pages.Account;

/// <summary>
/// A signed-in person changes their password: the current one, then the new one twice (its strength shown as it
/// is typed). All three are posted in the body. This browser stays signed in; the others are signed out.
/// </summary>
public sealed class PasswordModel(
    PasswordChanges changes, UserManager<AppUser> users, Policy.PolicyStore policies, TenantContext tenant, IOptions<IssuerOptions> issuer) : PageModel
{
    [BindProperty]
    [FromForm]
    public string? CurrentPassword { get; set; }

    [BindProperty]
    [FromForm]
    public string? NewPassword { get; set; }

    [BindProperty]
    [FromForm]
    public string? ConfirmPassword { get; set; }

    public AppUser? Account { get; private set; }

    public bool Done { get; private set; }

    public List<string> Errors { get; } = [];

    private string LoginUrl => ReturnUrls.SignInHere(Request);

    public async Task<IActionResult> OnGetAsync() => await LoadAsync() is null ? Redirect(LoginUrl) : Page();

    public async Task<IActionResult> OnPostAsync()
    {
        var (current, next, confirmation) = (CurrentPassword ?? "", NewPassword ?? "", ConfirmPassword ?? "");
        CurrentPassword = NewPassword = ConfirmPassword = null;
        if (await LoadAsync() is not { } user)
        {
            return Redirect(LoginUrl);
        }

        if (current.Length == 0 || next.Length == 0)
        {
            Errors.Add("Enter your current password and a new one.");
        }
        else if (next != confirmation)
        {
            Errors.Add("The two new passwords differ.");
        }
        else
        {
            var pages = issuer.Value.IssuerFor(Request, tenant.Required.Id) + "/";
            Errors.AddRange(await changes.ChangeAsync(user, current, next, HttpContext, pages, HttpContext.RequestAborted));
        }

        if (Errors.Count > 0)
        {
            return Page();
        }

        Done = true;
        return Page();
    }

    /// <summary>The live strength meter's question: how strong is the new password typed so far (posted, never in a URL).</summary>
    public async Task<IActionResult> OnPostStrengthAsync()
    {
        var next = NewPassword ?? "";
        CurrentPassword = NewPassword = ConfirmPassword = null;
        if (await LoadAsync() is not { } user)
        {
            return NotFound();
        }

        var rules = (await policies.GetAsync(tenant.Required, HttpContext.RequestAborted)).Passwords;
        var strength = UserSecurity.Meter(next, user, tenant.Required);
        return ResetPasswordModel.StrengthAnswer(strength, rules.MinStrength);
    }

    private async Task<AppUser?> LoadAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Account = await HttpContext.SignedInAccountAsync(users);
        return Account;
    }
}
