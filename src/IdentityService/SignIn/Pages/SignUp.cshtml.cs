using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// Creating an account, where the tenant takes sign-ups: email and password (posted in the body only), the
/// password's strength shown as it is typed. The answer to a good form is "check your email", whether or not the
/// address has an account; a refusal by a protection says nothing of which one refused.
/// </summary>
public sealed class SignUpModel(
    SignUps signUps, PolicyStore policies, Pipeline.DeviceCookie devices, TenantContext tenant, IProtectionStore protection,
    IOptions<Oidc.IssuerOptions> issuer) : PageModel
{
    public const string RefusedMessage = "An account cannot be created from here now. Please try again later.";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    /// <summary>The address an app suggested (<c>login_hint</c> with <c>prompt=create</c>), filled in.</summary>
    [BindProperty(SupportsGet = true, Name = "login_hint")]
    public string? LoginHint { get; set; }

    [BindProperty]
    [FromForm]
    public string? Email { get; set; }

    [BindProperty]
    [FromForm]
    public string? Name { get; set; }

    /// <summary>Whether the tenant asks the person's full name.</summary>
    public bool AskName { get; private set; }

    /// <summary>The tenant's terms of service, which the person accepts with a checkbox; null: none.</summary>
    public string? TermsUrl { get; private set; }

    [BindProperty]
    [FromForm]
    public bool AcceptTerms { get; set; }

    [BindProperty]
    [FromForm]
    public string? Password { get; set; }

    /// <summary>The reCAPTCHA widget's token, when the tenant asks for one (bound as the form's other fields: a body that is not a form has none).</summary>
    [BindProperty(Name = "g-recaptcha-response")]
    [FromForm(Name = "g-recaptcha-response")]
    public string? CaptchaResponse { get; set; }

    [BindProperty]
    [FromForm]
    public string? ConfirmPassword { get; set; }

    public bool Available { get; private set; }

    public bool Sent { get; private set; }

    public bool Refused { get; private set; }

    public int LinkLifetimeMinutes { get; private set; }

    public Dictionary<string, List<string>> Errors { get; private set; } = [];

    /// <summary>The tenant's reCAPTCHA settings when it uses reCAPTCHA: only then does the page load Google's script.</summary>
    public CaptchaPolicy? Captcha { get; private set; }

    public async Task OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Email = LoginHint is { Length: <= 256 } hint ? hint : null;
        await LoadAsync();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        Response.Headers.CacheControl = "no-store";
        await LoadAsync();
        var (password, confirmation) = (Password ?? "", ConfirmPassword ?? "");
        Password = ConfirmPassword = null;
        if (!Available)
        {
            return Page();
        }

        Email = Email?.Trim() ?? "";
        if (password.Length == 0)
        {
            Errors["Password"] = ["Choose a password."];
        }
        else if (password != confirmation)
        {
            Errors["ConfirmPassword"] = ["The two passwords differ."];
        }

        if (Errors.Count > 0)
        {
            return Page();
        }

        var pages = issuer.Value.IssuerFor(Request, tenant.Required.Id) + "/";
        var outcome = await signUps.RequestAsync(
            new SignUps.Request(Email, password, HttpContext, CaptchaResponse ?? "", devices.Read(HttpContext), ReturnUrls.Sanitize(Request, ReturnUrl), Name, AcceptTerms),
            pages, HttpContext.RequestAborted);
        Refused = outcome.Refused;
        Errors = outcome.Errors;
        Sent = outcome.Sent;
        return Page();
    }

    /// <summary>The live strength meter's question: how strong is the password typed so far for this address (posted, never in a URL).</summary>
    public async Task<IActionResult> OnPostStrengthAsync()
    {
        Response.Headers.CacheControl = "no-store";
        var policy = await LoadAsync();
        var password = Password ?? "";
        Password = ConfirmPassword = null;
        if (!Available)
        {
            return NotFound();
        }

        // zxcvbn costs a few milliseconds: an address asks at most as often per minute as it may try to sign in.
        var ip = IpRanges.ClientOf(HttpContext);
        if (await protection.IncrementAsync(tenant.Required.Id, $"rl:strength:{IpRanges.ProtectionKeyOf(ip)}", TimeSpan.FromMinutes(1), HttpContext.RequestAborted) > policy.RateLimits.SignInPerIpPerMinute)
        {
            return StatusCode(StatusCodes.Status429TooManyRequests);
        }

        var candidate = new AppUser { Email = Email?.Trim(), UserName = Email?.Trim(), Name = Name?.Trim() };
        var strength = UserSecurity.Meter(password, candidate, tenant.Required);
        return ResetPasswordModel.StrengthAnswer(strength, policy.Passwords.MinStrength);
    }

    private async Task<TenantPolicy> LoadAsync()
    {
        var policy = await policies.GetAsync(tenant.Required, HttpContext.RequestAborted);
        Available = await signUps.AvailableAsync(HttpContext.RequestAborted);
        Captcha = policy.Captcha.Provider is "v3" or "enterprise" ? policy.Captcha : null;
        LinkLifetimeMinutes = policy.SignUp.LinkLifetimeMinutes;
        AskName = policy.SignUp.AskName;
        TermsUrl = policy.Terms.Url;
        return policy;
    }
}
