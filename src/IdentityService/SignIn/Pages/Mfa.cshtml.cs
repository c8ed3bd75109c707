using IdentityService.Mfa;
using IdentityService.Pipeline;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// The second step of a challenged sign-in: a code from the account's authenticator app, or one sent by email or
/// SMS at the person's request (a GET never sends anything). An account with no factor, at a tenant that requires
/// one, sets up an authenticator app here first. Codes come in the POST body only.
/// </summary>
public sealed class MfaModel(
    SecondFactors factors, RecoveryCodes recovery, Passkeys passkeys, TrustedBrowsers browsers, DeviceCookie devices, TenantContext tenant, TimeProvider time)
    : PageModel
{
    public const string ExpiredMessage = "This sign-in has expired. Please sign in again.";
    public const string WrongCodeMessage = "That code is not right. Check it and try again.";
    public const string EndedMessage = "Too many wrong codes. Please sign in again.";
    public const string LockedMessage = "Too many wrong codes for this account. Try again later.";
    public const string NotSentMessage = "The code could not be sent. Try again later, or use another way.";
    public const string PasskeyFailedMessage = "That passkey was not accepted. Try again, or use another way.";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty]
    [FromForm]
    public string? Factor { get; set; }

    [BindProperty]
    [FromForm]
    public string? Code { get; set; }

    /// <summary>A passkey's answer (the browser's credential, as JSON), and the ceremony's protected state.</summary>
    [BindProperty]
    [FromForm]
    public string? Credential { get; set; }

    [BindProperty]
    [FromForm]
    public string? State { get; set; }

    /// <summary>"Don't ask again on this browser", where the tenant allows it.</summary>
    [BindProperty]
    [FromForm]
    public bool RememberBrowser { get; set; }

    /// <summary>The options for signing in with one of the account's passkeys, when it has one.</summary>
    public Passkeys.Ceremony? PasskeyCeremony { get; private set; }

    public SecondFactors.Challenge? Pending { get; private set; }

    public string? Error { get; private set; }

    public string? Info { get; private set; }

    /// <summary>The recovery codes made with an authenticator app set up now, shown once before going on.</summary>
    public IReadOnlyList<string>? NewRecoveryCodes { get; private set; }

    /// <summary>Where the sign-in goes on to, once the person has kept their recovery codes.</summary>
    public string ContinueUrl => ReturnUrls.Sanitize(Request, ReturnUrl);

    /// <summary>The enrollment's QR code (a PNG data URI) and secret, when the account sets up its authenticator app now.</summary>
    public (string QrCode, string Secret)? Enrollment { get; private set; }

    public async Task OnGetAsync() => await LoadAsync();

    public async Task<IActionResult> OnPostSendAsync()
    {
        if (!await LoadAsync())
        {
            return Page();
        }

        if (await factors.SendCodeAsync(Pending!, Factor ?? "", HttpContext, HttpContext.RequestAborted))
        {
            Info = $"We sent a code to {Destination(Factor!)}.";
        }
        else
        {
            Error = NotSentMessage;
        }

        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!await LoadAsync())
        {
            return Page();
        }

        var challenge = Pending!;
        var factor = Factor ?? "";
        var passkey = factor == SecondFactors.Passkey;
        var outcome = await factors.VerifyAsync(challenge, factor, passkey ? Credential : Code, HttpContext, HttpContext.RequestAborted, State);
        Code = null;
        Credential = null;
        switch (outcome)
        {
            case SecondFactors.Outcome.Succeeded:
                SecondFactors.Forget(HttpContext);
                await devices.RememberAsync(HttpContext, challenge.User.Id, devices.Read(HttpContext), challenge.Row.Country, HttpContext.RequestAborted);
                // RFC 8176 has no method for a recovery code: the session says only that it took two.
                // A passkey is the proof of possession of a key (swk: synced passkeys live in software as often as in hardware).
                string[] amr = factor switch
                {
                    SecondFactors.Sms => ["pwd", "sms", "mfa"],
                    SecondFactors.Recovery => ["pwd", "mfa"],
                    SecondFactors.Passkey => ["pwd", "swk", "mfa"],
                    _ => ["pwd", "otp", "mfa"],
                };
                await HttpContext.SignInAsync(Session.Scheme, Session.CreatePrincipal(challenge.User, tenant.Required.Id, time.GetUtcNow(), amr));
                if (RememberBrowser)
                {
                    await browsers.RememberAsync(HttpContext, challenge.User, challenge.Policy.Mfa.RememberBrowserDays, HttpContext.RequestAborted);
                }

                if (challenge.Enrolling)
                {
                    // The app just set up is the account's only factor: recovery codes now, or a lost phone needs an admin.
                    NewRecoveryCodes = await recovery.CreateAsync(challenge.User, HttpContext, HttpContext.RequestAborted);
                    Pending = null;
                    Enrollment = null;
                    return Page();
                }

                return LocalRedirect(ContinueUrl);
            case SecondFactors.Outcome.WrongCode:
                Error = passkey ? PasskeyFailedMessage : WrongCodeMessage;
                await LoadAsync();
                return Page();
            case SecondFactors.Outcome.Locked:
                SecondFactors.Forget(HttpContext);
                Pending = null;
                Error = LockedMessage;
                return Page();
            default:
                SecondFactors.Forget(HttpContext);
                Pending = null;
                Error = EndedMessage;
                return Page();
        }
    }

    /// <summary>Where a code by this factor goes, shown in part: <c>a•••@example.com</c>, <c>phone ending 1234</c>.</summary>
    public string Destination(string factor)
    {
        var user = Pending!.User;
        if (factor == SecondFactors.Sms)
        {
            var phone = user.PhoneNumber ?? "";
            return $"your phone number ending {phone[Math.Max(0, phone.Length - 4)..]}";
        }

        var email = user.Email ?? "";
        var at = email.IndexOf('@');
        return at <= 0 ? email : $"{email[0]}•••{email[at..]}";
    }

    private async Task<bool> LoadAsync()
    {
        Response.Headers.CacheControl = "no-store";
        Pending = await factors.LoadAsync(HttpContext, HttpContext.RequestAborted);
        if (Pending is null)
        {
            Error = ExpiredMessage;
            return false;
        }

        if (Pending.Factors.Contains(SecondFactors.Passkey))
        {
            PasskeyCeremony = await passkeys.BeginAssertionAsync(Pending, HttpContext);
        }

        if (Pending.Enrolling)
        {
            var secret = factors.EnrollmentSecret(Pending);
            Enrollment = (QrCode.DataUri(factors.EnrollmentUri(secret, Pending.User)), secret);
        }

        return true;
    }
}
