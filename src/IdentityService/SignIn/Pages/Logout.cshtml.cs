using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

public sealed class LogoutModel(TenantContext tenant) : PageModel
{
    [BindProperty(SupportsGet = true, Name = "done")]
    public bool SignedOut { get; set; }

    public string TenantName => tenant.Required.DisplayName;

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        await HttpContext.SignOutAsync(Session.Scheme);
        return RedirectToPage(new { done = true });
    }
}
