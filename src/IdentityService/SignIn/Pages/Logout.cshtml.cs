using IdentityService.Tenancy;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

public sealed class LogoutModel(TenantContext tenant) : PageModel
{
    [BindProperty(SupportsGet = true, Name = "done")]
    public bool SignedOut { get; set; }

    /// <summary>Where to go once signed out: the end-session request that asked for confirmation.</summary>
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string TenantName => tenant.Required.DisplayName;

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        await HttpContext.EndSessionAsync();
        return string.IsNullOrEmpty(ReturnUrl)
            ? RedirectToPage(new { done = true })
            : LocalRedirect(ReturnUrls.Sanitize(Request, ReturnUrl));
    }
}
