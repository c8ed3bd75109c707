using IdentityService.Users;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// Where a sign-up's emailed link leads. Opening the link shows the address and a button: the account is made by
/// the button's POST, not by the link, so a mail scanner that opens every link confirms nothing. The link's token
/// is carried on in the form's body; the page is not cached and sends no referrer.
/// </summary>
public sealed class ConfirmSignUpModel(SignUps signUps) : PageModel
{
    public const string InvalidLinkMessage = "This link has expired or was already used. Sign up again to get a new one.";

    [Microsoft.AspNetCore.Mvc.BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    /// <summary>The address of a link that works; null for one that does not.</summary>
    public string? Email { get; private set; }

    /// <summary>What the POST did; null before.</summary>
    public SignUps.Completion? Result { get; private set; }

    /// <summary>The sign-in page, for the address, going on to where the person was going when they signed up.</summary>
    public string? SignInUrl { get; private set; }

    public async Task OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Email = (await signUps.FindAsync(Token, HttpContext.RequestAborted))?.Email;
    }

    public async Task OnPostAsync()
    {
        Response.Headers.CacheControl = "no-store";
        var (result, signUp) = await signUps.CompleteAsync(Token, HttpContext, HttpContext.RequestAborted);
        if (result == SignUps.Completion.InvalidLink)
        {
            return;
        }

        Result = result;
        Email = signUp!.Email;
        SignInUrl = "../login" + QueryString.Create(new Dictionary<string, string?>
        {
            ["ReturnUrl"] = ReturnUrls.Sanitize(Request, signUp.ReturnUrl),
            ["login_hint"] = signUp.Email,
        });
    }
}
