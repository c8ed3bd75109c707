using IdentityService.Users;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// Where a sign-up's emailed link leads. Opening the link shows the address, a field for the password chosen at
/// sign-up and a button: the account is made by the button's POST, not by the link, so a mail scanner that opens
/// every link confirms nothing, and only with that password, so the owner of an address a stranger signed up makes
/// no account for the stranger. The link's token
/// is carried on in the form's body; the page is not cached and sends no referrer.
/// </summary>
public sealed class ConfirmSignUpModel(SignUps signUps) : PageModel
{
    public const string InvalidLinkMessage = "This link has expired or was already used. Sign up again to get a new one.";

    public const string WrongPasswordMessage = "This is not the password chosen when this account was asked for. If you did not ask for it, ignore the link: no account is made.";

    public const string ClosedMessage = "Accounts cannot be created here any more.";

    /// <summary>The password chosen at sign-up, typed again (from the form only).</summary>
    [Microsoft.AspNetCore.Mvc.BindProperty]
    [Microsoft.AspNetCore.Mvc.FromForm]
    public string? Password { get; set; }

    public string? Error { get; private set; }

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
        var (result, signUp) = await signUps.CompleteAsync(Token, Password, HttpContext, HttpContext.RequestAborted);
        Password = null;
        if (result == SignUps.Completion.InvalidLink)
        {
            return;
        }

        if (result is SignUps.Completion.WrongPassword or SignUps.Completion.Closed)
        {
            // The form again (a wrong password), or the reason no account can be made.
            Error = result == SignUps.Completion.WrongPassword ? WrongPasswordMessage : ClosedMessage;
            Email = result == SignUps.Completion.WrongPassword ? (await signUps.FindAsync(Token, HttpContext.RequestAborted))?.Email : null;
            Result = result == SignUps.Completion.Closed ? result : null;
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
