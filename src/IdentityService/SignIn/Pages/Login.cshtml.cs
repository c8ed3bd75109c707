using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

/// <summary>The sign-in page: email and password, posted in the body only.</summary>
public sealed class LoginModel(PasswordSignIn passwords, TenantContext tenant, TimeProvider time) : PageModel
{
    /// <summary>The one message of every refused sign-in, whatever refused it.</summary>
    public const string RefusedMessage = "Email and/or password invalid.";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty(SupportsGet = true, Name = "login_hint")]
    public string? LoginHint { get; set; }

    [BindProperty]
    public string? Email { get; set; }

    [BindProperty]
    public string? Password { get; set; }

    public string? Error { get; private set; }

    public void OnGet() => Email = LoginHint;

    public async Task<IActionResult> OnPostAsync()
    {
        var user = await passwords.CheckAsync(Email, Password);
        Password = null;
        if (user is null)
        {
            Error = RefusedMessage;
            return Page();
        }

        var principal = Session.CreatePrincipal(user.Id, tenant.Required.Id, user.Email ?? "", time.GetUtcNow(), "pwd");
        await HttpContext.SignInAsync(Session.Scheme, principal);
        return LocalRedirect(ReturnUrls.Sanitize(Request, ReturnUrl));
    }
}
