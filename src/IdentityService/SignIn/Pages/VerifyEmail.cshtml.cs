using IdentityService.Users;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// Where an emailed verification link leads: the address and a button, whose POST verifies it (a mail scanner
/// that opens the link verifies nothing). No sign-in needed: the link is the proof that the mailbox is read.
/// </summary>
public sealed class VerifyEmailModel(EmailVerifications verifications) : PageModel
{
    public const string InvalidLinkMessage = "This link has expired, or the address of the account has changed since it was sent. Ask for a new one on the security page of your account.";

    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    public string? Email { get; private set; }

    public bool Done { get; private set; }

    public async Task OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Email = (await verifications.FindAsync(Token))?.Email;
    }

    public async Task OnPostAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Email = (await verifications.FindAsync(Token))?.Email;
        Done = Email is not null && await verifications.VerifyAsync(Token, HttpContext);
    }
}
