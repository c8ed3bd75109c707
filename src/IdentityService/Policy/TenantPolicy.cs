using System.Text.Json.Serialization;

namespace IdentityService.Policy;

/// <summary>
/// A tenant's security policy: one JSON document (CONTRACT.md section 8), validated as a whole.
/// Every default is the promise the service makes when a tenant changes nothing.
/// </summary>
public sealed class TenantPolicy
{
    public LockoutPolicy Lockout { get; set; } = new();

    public IpBlockingPolicy IpBlocking { get; set; } = new();

    public CountryPolicy Countries { get; set; } = new();

    public IpRulesPolicy IpRules { get; set; } = new();

    public MfaPolicy Mfa { get; set; } = new();

    public PasswordResetPolicy PasswordReset { get; set; } = new();

    public SignUpPolicy SignUp { get; set; } = new();

    public AccountPolicy Account { get; set; } = new();

    public TermsPolicy Terms { get; set; } = new();

    public NotificationPolicy Notifications { get; set; } = new();

    public PasswordPolicy Passwords { get; set; } = new();

    public AlertPolicy Alerts { get; set; } = new();

    public RateLimitPolicy RateLimits { get; set; } = new();

    public CaptchaPolicy Captcha { get; set; } = new();

    public EmailPolicy Email { get; set; } = new();

    public BrandingPolicy Branding { get; set; } = new();
}

/// <summary>How the tenant's pages look: its logo above every page, and its colour on their buttons.</summary>
public sealed class BrandingPolicy
{
    /// <summary>The logo (an absolute https URL, such as the tenant's CDN); the pages' policy allows images from its origin. None by default.</summary>
    public string? LogoUrl
    {
        get => _logoUrl;
        set
        {
            _logoUrl = value;
            LogoOrigin = value is not null && Uri.TryCreate(value, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Authority) : null;
        }
    }

    /// <summary>The buttons' colour, <c>#rrggbb</c>; their text is black or white, whichever reads better on it. Default: the service's blue.</summary>
    public string? PrimaryColor { get; set; }

    private string? _logoUrl;

    /// <summary>The logo's origin (<c>https://host[:port]</c>), for the pages' Content Security Policy; null without a logo. Worked out once, as the URL is set.</summary>
    [JsonIgnore]
    public string? LogoOrigin { get; private set; }

    /// <summary>Black or white, whichever contrasts more with <see cref="PrimaryColor"/> (WCAG's relative luminance).</summary>
    public string TextColor()
    {
        if (PrimaryColor is not { Length: 7 } color)
        {
            return "#fff";
        }

        static double Channel(string hex)
        {
            var c = Convert.ToInt32(hex, 16) / 255.0;
            return c <= 0.03928 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4);
        }

        var luminance = (0.2126 * Channel(color[1..3])) + (0.7152 * Channel(color[3..5])) + (0.0722 * Channel(color[5..7]));
        return luminance > 0.179 ? "#000" : "#fff";
    }
}

/// <summary>Where the tenant's mail (reset links, sign-in codes) is sent from.</summary>
public sealed class EmailPolicy
{
    /// <summary>The tenant's own SMTP server; null (default): the service's (<c>Email:Smtp</c>).</summary>
    public TenantSmtpServer? Smtp { get; set; }
}

/// <summary>A tenant's own SMTP server. Outside Development: a public address, and TLS whatever <see cref="UseTls"/> says.</summary>
public sealed class TenantSmtpServer
{
    public string? Host { get; set; }

    public int Port { get; set; } = 587;

    public string? UserName { get; set; }

    /// <summary>
    /// Write-only: never returned by the API. Kept with Data Protection: the API protects what it is sent, and
    /// only the mailer unprotects it, to log in.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Password { get; set; }

    public bool UseTls { get; set; } = true;

    /// <summary>The sender, e.g. <c>"Acme" &lt;no-reply@acme.example&gt;</c>.</summary>
    public string? From { get; set; }
}

public sealed class LockoutPolicy
{
    /// <summary>Failed passwords on a known account before it locks. Default 10.</summary>
    public int MaxFailedAttempts { get; set; } = 10;

    /// <summary>How long a lockout lasts. Default 10 minutes.</summary>
    public int LockoutMinutes { get; set; } = 10;

    /// <summary>
    /// <c>plain</c> (default): every failure counts against the account. <c>smart</c>: failures from devices the
    /// account has never signed in from are counted apart, and lock out only unfamiliar devices.
    /// </summary>
    public string Mode { get; set; } = LockoutModes.Plain;
}

public static class LockoutModes
{
    public const string Plain = "plain";
    public const string Smart = "smart";
}

public sealed class IpBlockingPolicy
{
    /// <summary>Failed sign-ins with unknown usernames from one IP before it is blocked. Default 5.</summary>
    public int UnknownUserFailures { get; set; } = 5;

    /// <summary>How long a block lasts. Default 30 minutes.</summary>
    public int BlockMinutes { get; set; } = 30;

    /// <summary>Distinct usernames tried from one IP within <see cref="WindowMinutes"/> that block it (credential stuffing). Default 20.</summary>
    public int DistinctUsernames { get; set; } = 20;

    /// <summary>The window over which unknown-user failures and distinct usernames are counted. Default 30 minutes.</summary>
    public int WindowMinutes { get; set; } = 30;
}

public sealed class CountryPolicy
{
    /// <summary>ISO 3166-1 alpha-2 codes allowed to sign in; empty means every country.</summary>
    public List<string> Allowed { get; set; } = [];

    /// <summary><c>allow</c> (default) or <c>deny</c> an address whose country is unknown.</summary>
    public string WhenUnknown { get; set; } = "allow";
}

public sealed class IpRulesPolicy
{
    /// <summary>Addresses or CIDR ranges always allowed past the IP checks (blocks, countries). IPv4 and IPv6.</summary>
    public List<string> Allow { get; set; } = [];

    /// <summary>Addresses or CIDR ranges never allowed to sign in.</summary>
    public List<string> Deny { get; set; } = [];
}

public sealed class MfaPolicy
{
    /// <summary><c>off</c> (default), <c>optional</c> (users who enrolled a factor) or <c>required</c>.</summary>
    public string Mode { get; set; } = "off";

    public List<string> Factors { get; set; } = ["totp", "sms", "email"];

    /// <summary>
    /// Whether a person may sign in with a passkey alone, no password (<c>passkey</c> must be among the factors): the
    /// sign-in page offers "Sign in with a passkey", and the authenticator must verify the person (a PIN or a
    /// biometric), so the passkey is two factors on its own. Off by default.
    /// </summary>
    public bool PasskeySignIn { get; set; }

    /// <summary>
    /// Days a browser may skip the second step once the person ticked "don't ask again on this browser" (0, the
    /// default: never). Risk-based step-up and a low captcha score still ask.
    /// </summary>
    public int RememberBrowserDays { get; set; }

    /// <summary>Risk-based step-up: ask a second factor on risk signals. Off by default.</summary>
    public StepUpPolicy StepUp { get; set; } = new();
}

public sealed class StepUpPolicy
{
    public bool Enabled { get; set; }

    /// <summary>A device never seen for this account.</summary>
    public bool NewDevice { get; set; } = true;

    /// <summary>A country never seen for this account.</summary>
    public bool NewCountry { get; set; } = true;

    /// <summary>An IP that failed recently against other accounts.</summary>
    public bool RecentFailuresFromIp { get; set; } = true;
}

/// <summary>What a new password must be: set by an admin, or by its user through a reset link.</summary>
public sealed class PasswordPolicy
{
    /// <summary>The fewest characters (8 to 128). Default 8, NIST SP 800-63B's floor.</summary>
    public int MinLength { get; set; } = 8;

    /// <summary>
    /// The lowest zxcvbn score (0 to 4: too guessable, very guessable, somewhat guessable, safely unguessable, very
    /// unguessable), counting the account's email and names and the tenant's name as guessable words. Default 2.
    /// </summary>
    public int MinStrength { get; set; } = 2;

    /// <summary>
    /// Refuse a new password that appears in a known data breach (Have I Been Pwned's Pwned Passwords, asked by
    /// k-anonymity: 5 characters of its SHA-1 leave the service). Off by default: it asks a service outside.
    /// </summary>
    public bool RejectBreached { get; set; }

    /// <summary>
    /// At sign-in, a right password known from a data breach does not sign in: the owner is mailed a link to choose a
    /// new one; new passwords are checked too, as with <see cref="RejectBreached"/>. Off by default (it asks the same
    /// service outside, once a day per account and password).
    /// </summary>
    public bool CheckBreachedAtSignIn { get; set; }
}

/// <summary>When the tenant is told that its endpoints answer too many errors (an <c>alert.errors</c> audit event, sent to its webhooks).</summary>
public sealed class AlertPolicy
{
    /// <summary>Errors within one minute that raise an alert (once per minute); 0: never. Default 100.</summary>
    public int ErrorsPerMinute { get; set; } = 100;

    /// <summary>The statuses counted as errors. Default 400, 401, 403 and 429.</summary>
    public List<int> Statuses { get; set; } = [400, 401, 403, 429];
}

public sealed class PasswordResetPolicy
{
    public int LinkLifetimeMinutes { get; set; } = 30;
}

/// <summary>Whether people may create their own accounts on the tenant's pages, and for which addresses.</summary>
public sealed class SignUpPolicy
{
    /// <summary>Off by default: a tenant's accounts are made by its admins until it opens sign-up.</summary>
    public bool Enabled { get; set; }

    /// <summary>The email domains that may sign up (<c>example.com</c> takes no subdomain); empty: any.</summary>
    public List<string> AllowedEmailDomains { get; set; } = [];

    /// <summary>How long the emailed confirmation link works. Default 60.</summary>
    public int LinkLifetimeMinutes { get; set; } = 60;

    /// <summary>Whether the page asks the person's full name too (then required). Off by default: email and password only.</summary>
    public bool AskName { get; set; }
}

/// <summary>Mail the service sends people about their own account, beyond what they ask for.</summary>
public sealed class NotificationPolicy
{
    /// <summary>
    /// Whether an account's owner is mailed when its password is used from a device it never signed in from (not on
    /// its first sign-in; to a verified address). Off by default.
    /// </summary>
    public bool NewDevice { get; set; }
}

/// <summary>The tenant's terms of service, which people accept; each account keeps which terms it accepted, and when.</summary>
public sealed class TermsPolicy
{
    /// <summary>
    /// The terms (an absolute http or https URL). When set, the sign-up page links them and a person accepts them
    /// to create an account. None by default.
    /// </summary>
    public string? Url { get; set; }

    /// <summary>
    /// Whether an account that has not accepted these terms (one an admin made, or one that accepted older terms) is
    /// asked to accept them at its next sign-in to an app, before the app gets a code. Off by default.
    /// </summary>
    public bool AskAtSignIn { get; set; }

    /// <summary>Whether an account that accepted the terms at <paramref name="acceptedUrl"/> (or none) must accept these before an app is let in.</summary>
    public bool IsDueFor(string? acceptedUrl) => AskAtSignIn && Url is not null && acceptedUrl != Url;
}

/// <summary>What a signed-in person may do to their own account on its pages.</summary>
public sealed class AccountPolicy
{
    /// <summary>Whether a person may delete their own account (with their password). Off by default.</summary>
    public bool AllowDeletion { get; set; }
}

public sealed class RateLimitPolicy
{
    public int SignInPerIpPerMinute { get; set; } = 60;

    public int TokenRequestsPerClientPerSecond { get; set; } = 100;

    public int RequestsPerTenantPerSecond { get; set; } = 1000;
}

public sealed class CaptchaPolicy
{
    /// <summary><c>none</c> (default), <c>v3</c> (siteverify) or <c>enterprise</c> (assessments).</summary>
    public string Provider { get; set; } = "none";

    public string? SiteKey { get; set; }

    /// <summary>v3: the secret key. Write-only: never returned by the API.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SecretKey { get; set; }

    /// <summary>Enterprise: the Google Cloud project id.</summary>
    public string? ProjectId { get; set; }

    /// <summary>Enterprise: the API key. Write-only: never returned by the API.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ApiKey { get; set; }

    /// <summary>Scores below it are risky. Default 0.5.</summary>
    public double Threshold { get; set; } = 0.5;

    public string ExpectedAction { get; set; } = "login";

    /// <summary>Hostnames the token must have been solved on; empty accepts any.</summary>
    public List<string> Hostnames { get; set; } = [];

    /// <summary><c>deny</c> (default) or <c>challenge</c> (ask a second factor) below the threshold.</summary>
    public string BelowThreshold { get; set; } = "deny";

    /// <summary><c>open</c> (default: let the sign-in go on) or <c>closed</c> (deny) when Google cannot be reached.</summary>
    public string WhenUnavailable { get; set; } = "open";
}
