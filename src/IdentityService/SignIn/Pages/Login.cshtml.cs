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
    SignInPipeline pipeline, PolicyStore policies, DeviceCookie devices, TenantContext tenant, Email.Mailer mailer, Mfa.SecondFactors secondFactors,
    Mfa.Passkeys passkeys, SignInLog log, TimeProvider time) : PageModel
{
    /// <summary>A passkey sign-in that did not go through, whatever stopped it (the person tries again, or uses the password).</summary>
    public const string PasskeyFailedMessage = "The passkey could not sign you in. Try again, or use your email and password.";

    /// <summary>The one message of every refused sign-in, whatever refused it.</summary>
    public const string RefusedMessage = "Email and/or password invalid.";

    /// <summary>A challenged sign-in whose account has no second factor it can use (and may not set one up now).</summary>
    public const string SecondFactorMessage = "This sign-in needs a second factor, and none can be offered to this account yet. Please contact your administrator.";

    /// <summary>A right password for an account an admin disabled: said only to whoever knows the password.</summary>
    public const string DisabledMessage = "This account is disabled. Please contact your administrator.";

    /// <summary>A right password known from a data breach, where the tenant checks at sign-in: said only to whoever knows it.</summary>
    public const string BreachedMessage = "This password has appeared in a data breach, so it can no longer be used here. "
        + "If your account has an email address, we have sent it a link to choose a new password.";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty(SupportsGet = true, Name = "login_hint")]
    public string? LoginHint { get; set; }

    /// <summary>The query parameter that asks this sign-in for a second step, even on a remembered browser (to change the account's second factors).</summary>
    public const string SecondStepParameter = "second_step";

    /// <summary>Whether the sign-in asks for a second step whatever the policy (it can only make a sign-in stricter).</summary>
    [BindProperty(SupportsGet = true, Name = SecondStepParameter)]
    public bool SecondStep { get; set; }

    // A person's credentials come from the POST body only, never from the URL: bound from the form alone.
    [BindProperty]
    [FromForm]
    public string? Email { get; set; }

    [BindProperty]
    [FromForm]
    public string? Password { get; set; }

    /// <summary>The reCAPTCHA widget's token, when the tenant asks for one (bound as the form's other fields: a body that is not a form has none).</summary>
    [BindProperty(Name = "g-recaptcha-response")]
    [FromForm(Name = "g-recaptcha-response")]
    public string? CaptchaResponse { get; set; }

    public string? Error { get; private set; }

    /// <summary>Whether the page offers a password reset by email (an SMTP server is configured).</summary>
    public bool CanResetPassword { get; private set; }

    /// <summary>Whether the page offers to create an account (the tenant takes sign-ups, and mail can be sent).</summary>
    public bool CanSignUp { get; private set; }

    /// <summary>The tenant's reCAPTCHA settings when it uses reCAPTCHA: only then does the page load Google's script.</summary>
    public CaptchaPolicy? Captcha { get; private set; }

    /// <summary>The options of "Sign in with a passkey", where the tenant lets passkeys sign in alone.</summary>
    public Mfa.Passkeys.Ceremony? PasskeyCeremony { get; private set; }

    public async Task OnGetAsync()
    {
        Email = LoginHint;
        await OfferPasskeyAsync(await LoadCaptchaAsync());
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
            CaptchaToken = CaptchaResponse ?? "",
            DeviceId = devices.Read(HttpContext),
            ClientId = ClientIdOf(ReturnUrl),
            SecondFactorNeededFor = SecondStep ? "asked" : null,
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
            return await PageAsync(policy);
        }

        if (!result.Succeeded)
        {
            Error = result.Reason switch
            {
                Pipeline.Steps.VerifyPassword.AccountDisabled => DisabledMessage,
                Pipeline.Steps.RefuseBreachedPassword.Reason => BreachedMessage,
                _ => RefusedMessage,
            };
            return await PageAsync(policy);
        }

        await devices.RememberAsync(context, HttpContext.RequestAborted);
        var principal = Session.CreatePrincipal(context.User!, tenant.Required.Id, time.GetUtcNow(), "pwd");
        await HttpContext.SignInAsync(Session.Scheme, principal);
        return LocalRedirect(ReturnUrls.Sanitize(Request, ReturnUrl));
    }

    /// <summary>
    /// A passkey alone, where the tenant lets it sign in (<c>mfa.passkeySignIn</c>): the address checks of a sign-in
    /// run first (rate limit, IP rules and blocks, countries; not reCAPTCHA, whose token the passkey's form does not
    /// carry, and which a passkey needs no help from), then the passkey's signature with the person verified by the
    /// authenticator. It stands for two factors, so no second step is asked, whatever the policy; and an account
    /// disabled by an admin is refused. A lockout (which counts wrong passwords) does not stop it.
    /// </summary>
    public async Task<IActionResult> OnPostPasskeyAsync(string? credential, string? state)
    {
        var policy = await LoadCaptchaAsync();
        var context = new SignInContext
        {
            Tenant = tenant.Required,
            Policy = policy,
            Http = HttpContext,
            Email = "",
            Password = "",
            Ip = IpRanges.ClientOf(HttpContext),
            UserAgent = Request.Headers.UserAgent.ToString(),
            DeviceId = devices.Read(HttpContext),
            ClientId = ClientIdOf(ReturnUrl),
        };
        if (!PasskeySignInOn(policy))
        {
            Error = PasskeyFailedMessage;
            return await PageAsync(policy);
        }

        if (await pipeline.ScreenAsync(context, HttpContext.RequestAborted, skip: nameof(Pipeline.Steps.VerifyCaptcha)) is var (reason, step))
        {
            await log.WriteAsync(context, new Pipeline.SignInResult(StepOutcome.Deny, reason, step, null));
            Error = PasskeyFailedMessage;
            return await PageAsync(policy);
        }

        var (user, failure) = await passkeys.VerifySignInAsync(credential, state, HttpContext);
        context.User = user;
        failure ??= user!.Disabled ? Pipeline.Steps.VerifyPassword.AccountDisabled : null;
        context.Trace.Add(new StepTrace(PasskeyStep, failure is null ? "continue" : "deny", failure, "passkey alone"));
        if (failure is not null)
        {
            await log.WriteAsync(context, new Pipeline.SignInResult(StepOutcome.Deny, failure, PasskeyStep, null));
            Error = failure == Pipeline.Steps.VerifyPassword.AccountDisabled ? DisabledMessage : PasskeyFailedMessage;
            return await PageAsync(policy);
        }

        await log.WriteAsync(context, new Pipeline.SignInResult(StepOutcome.Continue, null, null, null));
        await devices.RememberAsync(context, HttpContext.RequestAborted);
        await HttpContext.SignInAsync(Session.Scheme, Session.CreatePrincipal(user!, tenant.Required.Id, time.GetUtcNow(), "swk", "mfa"));
        return LocalRedirect(ReturnUrls.Sanitize(Request, ReturnUrl));
    }

    /// <summary>The name the sign-in log gives the passkey's check.</summary>
    public const string PasskeyStep = "VerifyPasskey";

    private static bool PasskeySignInOn(TenantPolicy policy) => policy.Mfa.PasskeySignIn && policy.Mfa.Factors.Contains(Mfa.SecondFactors.Passkey);

    private async Task OfferPasskeyAsync(TenantPolicy policy) =>
        PasskeyCeremony = PasskeySignInOn(policy) ? await passkeys.BeginSignInAsync(HttpContext) : null;

    private async Task<IActionResult> PageAsync(TenantPolicy policy)
    {
        await OfferPasskeyAsync(policy);
        return Page();
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
