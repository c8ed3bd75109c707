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
/// Without an SMTP server (the tenant's own or the service's), the page says that resets by email are not offered.
/// </summary>
public sealed class ForgotPasswordModel(PasswordResets resets, TenantContext tenant, IOptions<IssuerOptions> issuer) : PageModel
{
    public const string SentMessage = "If an account uses this address, we have sent it a link to choose a new password. Check your email.";

    [BindProperty]
    [FromForm]
    public string? Email { get; set; }

    /// <summary>Whether the tenant's mail can be sent (its own SMTP server, or the service's).</summary>
    public bool Available { get; private set; }

    public bool Sent { get; private set; }

    public async Task OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Available = await resets.AvailableAsync(HttpContext.RequestAborted);
    }

    public async Task<IActionResult> OnPostAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Available = await resets.AvailableAsync(HttpContext.RequestAborted);
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
