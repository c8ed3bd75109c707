using IdentityService.Mfa;
using IdentityService.Policy;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace IdentityService.SignIn.Pages.Account;

/// <summary>
/// A signed-in person's second factors: set up an authenticator app, remove it (with a code from it), and, where
/// the tenant's policy is optional, choose to be asked a second factor at sign-in. A change needs a sign-in of
/// the last 10 minutes; turning the second step off needs one made with a second factor.
/// </summary>
public sealed class SecurityModel(
    SecondFactors factors, RecoveryCodes recovery, Passkeys passkeys, TrustedBrowsers browsers, EmailVerifications verifications, AccountSessions sessions, Audit.AuditLog audit,
    UserManager<AppUser> users, PolicyStore policies, TenantContext tenant, TimeProvider time, IOptions<Oidc.IssuerOptions> issuer) : PageModel
{
    public static readonly TimeSpan FreshFor = TimeSpan.FromMinutes(10);
    public const string StaleMessage = "For your security, sign in again to change this.";
    public const string SecondStepMessage = "For your security, sign in again with your second step to change this.";
    public const string WrongCodeMessage = MfaModel.WrongCodeMessage;
    public const string EnrolledMessage = "Your authenticator app is set up. Sign-ins will ask for a code from it.";
    public const string RemovedMessage = "Your authenticator app is removed.";
    public const string StillAskedMessage = "Sign-ins still ask a second step.";
    public const string PasskeyAddedMessage = "Your passkey is added. Sign-ins will ask for it.";
    public const string PasskeyFailedMessage = "The passkey could not be added. Try again.";
    public const string PasskeyRemovedMessage = "Your passkey is removed.";
    public const string BrowsersForgottenMessage = "Every browser will ask for the second step again.";
    public const string NewCodesMessage = "New recovery codes are made. The codes you had before no longer work.";
    public const string SignedOutElsewhereMessage = "Every other browser and app is signed out. This browser stays signed in.";
    public const string VerificationSentMessage = "We have sent a link to your address. Open it within 24 hours to verify the address.";

    [BindProperty]
    [FromForm]
    public string? Code { get; set; }

    /// <summary>The secret being set up, protected (carried in the form, never shown as is).</summary>
    [BindProperty]
    [FromForm]
    public string? Pending { get; set; }

    /// <summary>A new passkey's answer (the browser's credential, as JSON), the ceremony's protected state, and the name given.</summary>
    [BindProperty]
    [FromForm]
    public string? Credential { get; set; }

    [BindProperty]
    [FromForm]
    public string? State { get; set; }

    [BindProperty]
    [FromForm]
    public string? PasskeyName { get; set; }

    /// <summary>The passkey to remove (its credential id, Base64url).</summary>
    [BindProperty]
    [FromForm]
    public string? PasskeyId { get; set; }

    public AppUser? Account { get; private set; }

    /// <summary>The account's passkeys, and the options to add one where the policy allows passkeys.</summary>
    public IList<UserPasskeyInfo> AccountPasskeys { get; private set; } = [];

    public Passkeys.Ceremony? NewPasskey { get; private set; }

    public bool HasAuthenticator { get; private set; }

    /// <summary>The factors the tenant allows that this account can use now.</summary>
    public IReadOnlyList<string> Usable { get; private set; } = [];

    public TenantPolicy Policy { get; private set; } = new();

    /// <summary>The browsers that skip the second step for this account now.</summary>
    public int RememberedBrowsers { get; private set; }

    /// <summary>The account's unused recovery codes.</summary>
    public int RecoveryCodesLeft { get; private set; }

    /// <summary>Recovery codes just made, shown this once.</summary>
    public IReadOnlyList<string>? NewRecoveryCodes { get; private set; }

    /// <summary>Whether the account has a second step that recovery codes stand in for.</summary>
    public bool MayHaveRecoveryCodes => Account is { } account && Policy.Mfa.Mode != "off"
        && (HasAuthenticator || AccountPasskeys.Count > 0 || account.TwoFactorEnabled || Policy.Mfa.Mode == "required" || RecoveryCodesLeft > 0);

    public (string QrCode, string Secret)? Enrollment { get; private set; }

    /// <summary>Whether the account's address is not verified and a link to verify it can be mailed.</summary>
    public bool CanVerifyEmail { get; private set; }

    public string? Error { get; private set; }

    public string? Info { get; private set; }

    public string LoginUrl => ReturnUrls.SignInHere(Request) + (Error == SecondStepMessage ? "&" + LoginModel.SecondStepParameter + "=true" : "");

    public async Task<IActionResult> OnGetAsync() => await LoadAsync() is null ? Redirect(LoginUrl) : Page();

    public async Task<IActionResult> OnPostSetupAsync()
    {
        if (await LoadForFactorChangeAsync() is not { } user)
        {
            return Account is null ? Redirect(LoginUrl) : Page();
        }

        if (!HasAuthenticator && Policy.Mfa.Factors.Contains(SecondFactors.Totp))
        {
            Pending = factors.NewSecret();
            ShowEnrollment(user);
        }

        return Page();
    }

    public async Task<IActionResult> OnPostEnrollAsync()
    {
        if (await LoadForFactorChangeAsync() is not { } user)
        {
            return Account is null ? Redirect(LoginUrl) : Page();
        }

        if (!HasAuthenticator && Pending is not null && await factors.EnrollAsync(user, Pending, Code, HttpContext, HttpContext.RequestAborted))
        {
            Pending = null;
            Info = EnrolledMessage;
            NewRecoveryCodes = await recovery.CreateAsync(user, HttpContext, HttpContext.RequestAborted);
            await LoadAsync();
            return Page();
        }

        Error = WrongCodeMessage;
        if (factors.ReadSecret(Pending) is not null)
        {
            ShowEnrollment(user);
        }

        return Page();
    }

    /// <summary>Ends every other session and grant of the account (a lost phone, a shared computer); this browser stays signed in.</summary>
    public async Task<IActionResult> OnPostSignOutOthersAsync()
    {
        if (await LoadAsync() is not { } user)
        {
            return Redirect(LoginUrl);
        }

        await sessions.EndOthersAsync(user, HttpContext);
        await audit.AccountActionAsync(HttpContext, tenant.Required, user, Audit.AuditEventTypes.UserSessionsEnded, new { kept = "this browser" });
        // Not loaded again: this request still carries the cookie with the old stamp (its answer carries the new one).
        Info = SignedOutElsewhereMessage;
        return Page();
    }

    /// <summary>Mails the account's address a link that verifies it (no recent sign-in needed: it changes nothing yet).</summary>
    public async Task<IActionResult> OnPostVerifyEmailAsync()
    {
        if (await LoadAsync() is not { } user)
        {
            return Redirect(LoginUrl);
        }

        if (CanVerifyEmail)
        {
            var pages = issuer.Value.IssuerFor(Request, tenant.Required.Id) + "/";
            (Info, Error) = await verifications.SendAsync(user, pages, HttpContext.RequestAborted)
                ? (VerificationSentMessage, null)
                : ((string?)null, "No link could be sent now. Try again later.");
        }

        return Page();
    }

    public async Task<IActionResult> OnPostRemoveAsync()
    {
        if (await LoadForChangeAsync() is not { } user)
        {
            return Account is null ? Redirect(LoginUrl) : Page();
        }

        if (!await factors.CheckAuthenticatorAsync(user, Code, HttpContext.RequestAborted))
        {
            Error = WrongCodeMessage;
            return Page();
        }

        Info = await factors.RemoveOwnAsync(user, HttpContext, HttpContext.RequestAborted) && Policy.Mfa.Mode == "optional"
            ? RemovedMessage + " " + StillAskedMessage
            : RemovedMessage;
        await LoadAsync();
        return Page();
    }

    /// <summary>Keeps a passkey the browser made; the first second factor of an account comes with recovery codes.</summary>
    public async Task<IActionResult> OnPostAddPasskeyAsync()
    {
        if (await LoadForChangeAsync() is not { } user)
        {
            return Account is null ? Redirect(LoginUrl) : Page();
        }

        if (!Policy.Mfa.Factors.Contains(SecondFactors.Passkey)
            || await passkeys.CompleteRegistrationAsync(user, Credential, State, PasskeyName, HttpContext) is not null)
        {
            Error = PasskeyFailedMessage;
            return Page();
        }

        Info = PasskeyAddedMessage;
        if (RecoveryCodesLeft == 0)
        {
            NewRecoveryCodes = await recovery.CreateAsync(user, HttpContext, HttpContext.RequestAborted);
        }

        await LoadAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostRemovePasskeyAsync()
    {
        if (await LoadForFactorChangeAsync() is not { } user)
        {
            return Account is null ? Redirect(LoginUrl) : Page();
        }

        if (await passkeys.RemoveAsync(user, PasskeyId, HttpContext))
        {
            Info = await factors.ForgetIfNoneLeftAsync(user, HttpContext.RequestAborted) && Policy.Mfa.Mode == "optional"
                ? PasskeyRemovedMessage + " " + StillAskedMessage
                : PasskeyRemovedMessage;
        }

        await LoadAsync();
        return Page();
    }

    /// <summary>Every browser remembered for the account asks the second step again (a lost or shared one among them).</summary>
    public async Task<IActionResult> OnPostForgetBrowsersAsync()
    {
        if (await LoadForChangeAsync() is not { } user)
        {
            return Account is null ? Redirect(LoginUrl) : Page();
        }

        var forgotten = await browsers.ForgetAllAsync(user, HttpContext.RequestAborted);
        await audit.AccountActionAsync(HttpContext, tenant.Required, user, Audit.AuditEventTypes.MfaRemoved, new { factor = "remembered_browsers", count = forgotten });
        Info = BrowsersForgottenMessage;
        await LoadAsync();
        return Page();
    }

    /// <summary>Makes a new set of recovery codes, ending the set before.</summary>
    public async Task<IActionResult> OnPostRecoveryAsync()
    {
        if (await LoadForFactorChangeAsync() is not { } user)
        {
            return Account is null ? Redirect(LoginUrl) : Page();
        }

        if (MayHaveRecoveryCodes)
        {
            NewRecoveryCodes = await recovery.CreateAsync(user, HttpContext, HttpContext.RequestAborted);
            Info = NewCodesMessage;
            await LoadAsync();
        }

        return Page();
    }

    /// <summary>Where the policy is optional: be asked a second factor at sign-in, or not.</summary>
    public async Task<IActionResult> OnPostAskAsync(bool ask)
    {
        if (await LoadForChangeAsync() is not { } user)
        {
            return Account is null ? Redirect(LoginUrl) : Page();
        }

        if (!ask && user.TwoFactorEnabled && !await SignedInWithSecondStepAsync())
        {
            // Turning the second step off is a downgrade: a password alone must not do it.
            Error = SecondStepMessage;
            return Page();
        }

        if (Policy.Mfa.Mode == "optional" && (!ask || Usable.Count > 0))
        {
            await factors.SetAskedAsync(user, ask, HttpContext);
        }

        await LoadAsync();
        return Page();
    }

    private void ShowEnrollment(AppUser user)
    {
        var secret = factors.ReadSecret(Pending)!;
        Enrollment = (QrCode.DataUri(factors.EnrollmentUri(secret, user)), secret);
    }

    /// <summary>The account, for a change: null (with the page's message) when the sign-in is not recent enough.</summary>
    private async Task<AppUser?> LoadForChangeAsync()
    {
        var user = await LoadAsync();
        var session = user is null ? null : await HttpContext.GetSessionAsync();
        if (session?.GetAuthTime() is not { } authTime || authTime + FreshFor < time.GetUtcNow())
        {
            Error = user is null ? null : StaleMessage;
            return null;
        }

        return user;
    }

    /// <summary>
    /// The account, for a change of its second factors (making recovery codes or an authenticator, removing a passkey):
    /// where its sign-ins ask a second step, only from a sign-in that answered one. A password alone (on a remembered
    /// browser) must not make a factor that works from any browser, nor remove one; null with the page's message.
    /// </summary>
    private async Task<AppUser?> LoadForFactorChangeAsync()
    {
        if (await LoadForChangeAsync() is not { } user)
        {
            return null;
        }

        if ((user.TwoFactorEnabled || Policy.Mfa.Mode == "required") && !await SignedInWithSecondStepAsync())
        {
            Error = SecondStepMessage;
            return null;
        }

        return user;
    }

    private async Task<bool> SignedInWithSecondStepAsync() => (await HttpContext.GetSessionAsync())?.HasClaim(Session.AmrClaim, "mfa") == true;

    private async Task<AppUser?> LoadAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Account = await HttpContext.SignedInAccountAsync(users);
        if (Account is null)
        {
            return null;
        }

        Policy = await policies.GetAsync(tenant.Required, HttpContext.RequestAborted);
        Usable = await factors.UsableFactorsAsync(Account, Policy, HttpContext.RequestAborted);
        HasAuthenticator = Usable.Contains(SecondFactors.Totp) || await factors.HasAuthenticatorAsync(Account, HttpContext.RequestAborted);
        RecoveryCodesLeft = await recovery.LeftAsync(Account, HttpContext.RequestAborted);
        AccountPasskeys = await passkeys.ListAsync(Account);
        RememberedBrowsers = await browsers.CountAsync(Account, HttpContext.RequestAborted);
        CanVerifyEmail = await verifications.CanVerifyAsync(Account, HttpContext.RequestAborted);
        NewPasskey = Policy.Mfa.Factors.Contains(SecondFactors.Passkey) ? await passkeys.BeginRegistrationAsync(Account, HttpContext) : null;
        return Account;
    }
}
