using IdentityService.Oidc;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace IdentityService.SignIn.Pages.Account;

/// <summary>
/// Where the link of an address change leads: the new address and a button, whose POST makes the change (a mail
/// scanner that opens the link changes nothing). No sign-in needed: the link proves the new mailbox is read, and
/// it was asked for with the password.
/// </summary>
public sealed class ConfirmEmailModel(EmailChanges changes, TenantContext tenant, IOptions<IssuerOptions> issuer) : PageModel
{
    public const string InvalidLinkMessage = "This link has expired, was used already, or the address of the account has changed since it was sent. Ask for a new one on your profile page.";

    [Microsoft.AspNetCore.Mvc.BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    public string? NewEmail { get; private set; }

    public EmailChanges.Outcome? Result { get; private set; }

    public async Task OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        NewEmail = (await changes.FindAsync(Token))?.NewEmail;
    }

    public async Task OnPostAsync()
    {
        Response.Headers.CacheControl = "no-store";
        NewEmail = (await changes.FindAsync(Token))?.NewEmail;
        Result = await changes.ConfirmAsync(Token, issuer.Value.IssuerFor(Request, tenant.Required.Id) + "/", HttpContext);
    }
}
