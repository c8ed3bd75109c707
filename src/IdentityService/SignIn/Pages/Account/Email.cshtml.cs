using IdentityService.Oidc;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace IdentityService.SignIn.Pages.Account;

/// <summary>
/// A signed-in person asks to move their account to a new email address, with their password: a link goes to the
/// new address, and the address changes only when it is used (<see cref="ConfirmEmailModel"/>).
/// </summary>
public sealed class EmailModel(EmailChanges changes, UserManager<AppUser> users, TenantContext tenant, IOptions<IssuerOptions> issuer) : PageModel
{
    [BindProperty]
    [FromForm]
    public string? NewEmail { get; set; }

    [BindProperty]
    [FromForm]
    public string? CurrentPassword { get; set; }

    public AppUser? Account { get; private set; }

    public bool Available { get; private set; }

    public string? SentTo { get; private set; }

    public IReadOnlyList<string> Errors { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync() => await LoadAsync() is null ? Redirect(ReturnUrls.SignInHere(Request)) : Page();

    public async Task<IActionResult> OnPostAsync()
    {
        var password = CurrentPassword ?? "";
        CurrentPassword = null;
        if (await LoadAsync() is not { } user)
        {
            return Redirect(ReturnUrls.SignInHere(Request));
        }

        if (Available)
        {
            var pages = issuer.Value.IssuerFor(Request, tenant.Required.Id) + "/";
            Errors = await changes.RequestAsync(user, NewEmail ?? "", password, pages, HttpContext, HttpContext.RequestAborted);
            SentTo = Errors.Count == 0 ? NewEmail!.Trim() : null;
        }

        return Page();
    }

    private async Task<AppUser?> LoadAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Account = await HttpContext.SignedInAccountAsync(users);
        Available = Account is not null && await changes.AvailableAsync(HttpContext.RequestAborted);
        return Account;
    }
}
