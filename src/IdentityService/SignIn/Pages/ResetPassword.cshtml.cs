using IdentityService.Protection;
using IdentityService.Users;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// Where an emailed reset link leads: a new password, twice. The link's token is carried on in the form's body;
/// the page is not cached and sends no referrer. A link unknown, used or expired gets a message and the way to
/// ask for a new one.
/// </summary>
public sealed class ResetPasswordModel(PasswordResets resets) : PageModel
{
    public const string InvalidLinkMessage = "This link has expired or was already used. Ask for a new one.";

    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    [BindProperty]
    [FromForm]
    public string? NewPassword { get; set; }

    [BindProperty]
    [FromForm]
    public string? ConfirmPassword { get; set; }

    public bool LinkValid { get; private set; }

    public bool Done { get; private set; }

    public string? Email { get; private set; }

    public List<string> Errors { get; } = [];

    public async Task OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        var user = await resets.FindAsync(Token, HttpContext.RequestAborted);
        LinkValid = user is not null;
        Email = user?.Email;
    }

    /// <summary>The live strength meter's question: how strong is the password typed so far (posted, never in a URL).</summary>
    public async Task<IActionResult> OnPostStrengthAsync()
    {
        Response.Headers.CacheControl = "no-store";
        var answer = await resets.StrengthAsync(Token, NewPassword ?? "", HttpContext.RequestAborted);
        NewPassword = null;
        if (answer is not { } found)
        {
            return NotFound();
        }

        return StrengthAnswer(found.Strength, found.Needed);
    }

    /// <summary>The live meter's answer (<c>_StrengthMeter</c>): the score, the tenant's minimum, and both in words.</summary>
    public static JsonResult StrengthAnswer(UserSecurity.Strength strength, int needed) => new(new
    {
        score = strength.Score,
        needed,
        acceptable = strength.Score >= needed,
        label = Labels[strength.Score],
        crackTime = strength.CrackTime,
    });

    /// <summary>zxcvbn's scores in words.</summary>
    public static readonly string[] Labels = ["too guessable", "very guessable", "somewhat guessable", "safely unguessable", "very unguessable"];

    public async Task<IActionResult> OnPostAsync()
    {
        Response.Headers.CacheControl = "no-store";
        var user = await resets.FindAsync(Token, HttpContext.RequestAborted);
        LinkValid = user is not null;
        Email = user?.Email;
        if (!LinkValid)
        {
            return Page();
        }

        if (string.IsNullOrEmpty(NewPassword))
        {
            Errors.Add("Choose a new password.");
        }
        else if (NewPassword != ConfirmPassword)
        {
            Errors.Add("The two passwords differ.");
        }

        if (Errors.Count == 0)
        {
            var ip = IpRanges.ClientOf(HttpContext);
            var result = await resets.ResetAsync(Token, NewPassword!, ip, HttpContext.RequestAborted);
            if (result is null)
            {
                LinkValid = false;
            }
            else
            {
                Errors.AddRange(result);
                Done = result.Count == 0;
            }
        }

        NewPassword = ConfirmPassword = null;
        return Page();
    }
}
