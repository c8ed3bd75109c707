using IdentityService.Pipeline;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// The sign-in page: email and password, posted in the body only, through the tenant's sign-in pipeline.
/// Every refusal shows the same message with the same status, whatever step refused.
/// </summary>
public sealed class LoginModel(
    SignInPipeline pipeline, PolicyStore policies, DeviceCookie devices, TenantContext tenant, Email.Mailer mailer, Mfa.SecondFactors secondFactors, TimeProvider time) : PageModel
{
    /// <summary>The one message of every refused sign-in, whatever refused it.</summary>
    public const string RefusedMessage = "Email and/or password invalid.";

    /// <summary>A challenged sign-in whose account has no second factor it can use (and may not set one up now).</summary>
    public const string SecondFactorMessage = "This sign-in needs a second factor, and none can be offered to this account yet. Please contact your administrator.";

    /// <summary>A right password for an account an admin disabled: said only to whoever knows the password.</summary>
    public const string DisabledMessage = "This account is disabled. Please contact your administrator.";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty(SupportsGet = true, Name = "login_hint")]
    public string? LoginHint { get; set; }

    // A person's credentials come from the POST body only, never from the URL: bound from the form alone.
    [BindProperty]
    [FromForm]
    public string? Email { get; set; }

    [BindProperty]
    [FromForm]
    public string? Password { get; set; }

    public string? Error { get; private set; }

    /// <summary>Whether the page offers a password reset by email (an SMTP server is configured).</summary>
    public bool CanResetPassword { get; private set; }

    /// <summary>Whether the page offers to create an account (the tenant takes sign-ups, and mail can be sent).</summary>
    public bool CanSignUp { get; private set; }

    /// <summary>The tenant's reCAPTCHA settings when it uses reCAPTCHA: only then does the page load Google's script.</summary>
    public CaptchaPolicy? Captcha { get; private set; }

    public async Task OnGetAsync()
    {
        Email = LoginHint;
        await LoadCaptchaAsync();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var policy = await LoadCaptchaAsync();
        var context = new SignInContext
        {
            Tenant = tenant.Required,
            Policy = policy,
            Http = HttpContext,
            Email = Email?.Trim() ?? "",
            Password = Password ?? "",
            Ip = IpRanges.ClientOf(HttpContext),
            UserAgent = Request.Headers.UserAgent.ToString(),
            CaptchaToken = Request.Form["g-recaptcha-response"].ToString(),
            DeviceId = devices.Read(HttpContext),
            ClientId = ClientIdOf(ReturnUrl),
        };
        Password = null;

        var result = await pipeline.RunAsync(context, HttpContext.RequestAborted);
        if (result.Outcome == StepOutcome.Challenge)
        {
            if (await secondFactors.BeginAsync(context, result.Reason, HttpContext.RequestAborted))
            {
                return Redirect(Request.PathBase + "/mfa" + QueryString.Create("ReturnUrl", ReturnUrl ?? ""));
            }

            Error = SecondFactorMessage;
            return Page();
        }

        if (!result.Succeeded)
        {
            Error = result.Reason == Pipeline.Steps.VerifyPassword.AccountDisabled ? DisabledMessage : RefusedMessage;
            return Page();
        }

        await devices.RememberAsync(context, HttpContext.RequestAborted);
        var principal = Session.CreatePrincipal(context.User!, tenant.Required.Id, time.GetUtcNow(), "pwd");
        await HttpContext.SignInAsync(Session.Scheme, principal);
        return LocalRedirect(ReturnUrls.Sanitize(Request, ReturnUrl));
    }

    private async Task<TenantPolicy> LoadCaptchaAsync()
    {
        var policy = await policies.GetAsync(tenant.Required, HttpContext.RequestAborted);
        Captcha = policy.Captcha.Provider is "v3" or "enterprise" ? policy.Captcha : null;
        CanResetPassword = mailer.IsConfiguredFor(policy);
        CanSignUp = CanResetPassword && policy.SignUp.Enabled;
        return policy;
    }

    private static string? ClientIdOf(string? returnUrl)
    {
        var query = returnUrl?.IndexOf('?') is int index and >= 0 ? returnUrl[index..] : null;
        return query is null ? null : QueryHelpers.ParseQuery(query).TryGetValue("client_id", out var id) ? id.ToString() : null;
    }
}
