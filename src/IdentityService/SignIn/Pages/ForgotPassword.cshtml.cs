using IdentityService.Oidc;
using IdentityService.Protection;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// Asks for a password reset link by email. The answer is the same whether or not the address has an account.
/// Without an SMTP server configured, the page says that resets by email are not offered.
/// </summary>
public sealed class ForgotPasswordModel(PasswordResets resets, TenantContext tenant, IOptions<IssuerOptions> issuer) : PageModel
{
    public const string SentMessage = "If an account uses this address, we have sent it a link to choose a new password. Check your email.";

    [BindProperty]
    [FromForm]
    public string? Email { get; set; }

    public bool Available => resets.Available;

    public bool Sent { get; private set; }

    public void OnGet() => Response.Headers.CacheControl = "no-store";

    public async Task<IActionResult> OnPostAsync()
    {
        Response.Headers.CacheControl = "no-store";
        if (!Available)
        {
            return Page();
        }

        var ip = IpRanges.ClientOf(HttpContext);
        var resetPage = issuer.Value.IssuerFor(Request, tenant.Required.Id) + "/reset-password";
        await resets.RequestAsync(Email?.Trim() ?? "", ip, resetPage, HttpContext.RequestAborted);
        Sent = true;
        return Page();
    }
}
