using IdentityService.Protection;

namespace IdentityService.Policy;

/// <summary>Validates a whole policy document; each error names its field by its JSON path.</summary>
public static class PolicyValidator
{
    public static Dictionary<string, string[]> Validate(TenantPolicy policy)
    {
        var errors = new Dictionary<string, string[]>();
        void Range(int value, int min, int max, string path)
        {
            if (value < min || value > max)
            {
                errors[path] = [$"{path} must be from {min} to {max}."];
            }
        }

        void OneOf(string? value, string[] allowed, string path)
        {
            if (value is null || !allowed.Contains(value))
            {
                errors[path] = [$"{path} must be one of: {string.Join(", ", allowed)}."];
            }
        }

        if (policy.Lockout is null || policy.IpBlocking is null || policy.Countries is null || policy.IpRules is null
            || policy.Mfa is null || policy.PasswordReset is null || policy.Passwords is null || policy.Alerts is null || policy.RateLimits is null || policy.Captcha is null
            || policy.Mfa.StepUp is null || policy.Email is null || policy.SignUp is null || policy.Account is null || policy.Terms is null || policy.Notifications is null
            || policy.Branding is null)
        {
            List<(string Path, object? Value)> sections =
            [
                ("lockout", policy.Lockout), ("ipBlocking", policy.IpBlocking), ("countries", policy.Countries), ("ipRules", policy.IpRules),
                ("mfa", policy.Mfa), ("passwordReset", policy.PasswordReset), ("passwords", policy.Passwords), ("rateLimits", policy.RateLimits),
                ("captcha", policy.Captcha), ("alerts", policy.Alerts), ("email", policy.Email), ("signUp", policy.SignUp), ("account", policy.Account),
                ("terms", policy.Terms), ("notifications", policy.Notifications), ("branding", policy.Branding),
            ];
            if (policy.Mfa is not null)
            {
                sections.Add(("mfa.stepUp", policy.Mfa.StepUp));
            }

            foreach (var (path, _) in sections.Where(s => s.Value is null))
            {
                errors[path] = [$"{path} may not be null: leave it out for its defaults."];
            }

            return errors;
        }

        Range(policy.Lockout.MaxFailedAttempts, 1, 1000, "lockout.maxFailedAttempts");
        Range(policy.Lockout.LockoutMinutes, 1, 7 * 24 * 60, "lockout.lockoutMinutes");
        OneOf(policy.Lockout.Mode, [LockoutModes.Plain, LockoutModes.Smart], "lockout.mode");
        Range(policy.IpBlocking.UnknownUserFailures, 0, 10_000, "ipBlocking.unknownUserFailures");
        Range(policy.IpBlocking.BlockMinutes, 1, 30 * 24 * 60, "ipBlocking.blockMinutes");
        Range(policy.IpBlocking.DistinctUsernames, 0, 10_000, "ipBlocking.distinctUsernames");
        Range(policy.IpBlocking.WindowMinutes, 1, 24 * 60, "ipBlocking.windowMinutes");

        for (var i = 0; i < (policy.Countries.Allowed?.Count ?? 0); i++)
        {
            if (!CountryCodes.IsValid(policy.Countries.Allowed![i]))
            {
                errors[$"countries.allowed[{i}]"] = ["Not an ISO 3166-1 alpha-2 code (two capital letters, such as FR)."];
            }
        }

        if (policy.Countries.Allowed is null)
        {
            errors["countries.allowed"] = ["countries.allowed must be a list (empty: every country)."];
        }
        else if (policy.Countries.Allowed.Distinct(StringComparer.Ordinal).Count() < policy.Countries.Allowed.Count)
        {
            errors["countries.allowed"] = ["countries.allowed names each country once."];
        }

        OneOf(policy.Countries.WhenUnknown, ["allow", "deny"], "countries.whenUnknown");
        Ranges(policy.IpRules.Allow, "ipRules.allow", errors);
        Ranges(policy.IpRules.Deny, "ipRules.deny", errors);

        OneOf(policy.Mfa.Mode, ["off", "optional", "required"], "mfa.mode");
        if (policy.Mfa.Factors is null || policy.Mfa.Factors.Any(f => f is not ("totp" or "sms" or "email" or "passkey")))
        {
            errors["mfa.factors"] = ["mfa.factors must be among: totp, sms, email, passkey."];
        }
        else if (policy.Mfa.Mode == "required" && policy.Mfa.Factors.Count == 0)
        {
            // Nobody could sign in: every sign-in would need a second factor that no one can enroll.
            errors["mfa.factors"] = ["mfa.mode required needs at least one factor."];
        }

        if (policy.Mfa.PasskeySignIn && policy.Mfa.Factors?.Contains("passkey") != true)
        {
            errors["mfa.passkeySignIn"] = ["mfa.passkeySignIn needs passkey among mfa.factors: people must be able to add one."];
        }

        Range(policy.Mfa.RememberBrowserDays, 0, 90, "mfa.rememberBrowserDays");
        Range(policy.PasswordReset.LinkLifetimeMinutes, 5, 24 * 60, "passwordReset.linkLifetimeMinutes");
        Range(policy.SignUp.LinkLifetimeMinutes, 5, 7 * 24 * 60, "signUp.linkLifetimeMinutes");
        if (policy.Terms.Url is { } terms && (terms.Length > 2000 || !Uri.TryCreate(terms, UriKind.Absolute, out var termsUri)
            || termsUri.Scheme is not ("https" or "http") || terms.Any(char.IsControl) || terms.Contains(' ')))
        {
            errors["terms.url"] = ["terms.url must be an absolute http or https URL of at most 2000 characters (null: no terms)."];
        }

        if (policy.Branding.LogoUrl is { } logo && (logo.Length > 2000 || !Uri.TryCreate(logo, UriKind.Absolute, out var logoUri)
            || logoUri.Scheme != "https" || logoUri.UserInfo.Length > 0 || logoUri.Fragment.Length > 0 || logo.Any(char.IsControl) || logo.Contains(' ')))
        {
            errors["branding.logoUrl"] = ["branding.logoUrl must be an absolute https URL of at most 2000 characters, without user info or fragment (null: no logo)."];
        }

        if (policy.Branding.PrimaryColor is { } color && !(color.Length == 7 && color[0] == '#' && color[1..].All(char.IsAsciiHexDigit)))
        {
            errors["branding.primaryColor"] = ["branding.primaryColor must be a colour written #rrggbb (null: the default)."];
        }

        if (policy.Terms.AskAtSignIn && policy.Terms.Url is null)
        {
            errors["terms.askAtSignIn"] = ["terms.askAtSignIn needs terms.url: there are no terms to accept."];
        }
        if (policy.SignUp.AllowedEmailDomains is null || policy.SignUp.AllowedEmailDomains.Count > 1000)
        {
            errors["signUp.allowedEmailDomains"] = ["signUp.allowedEmailDomains must be a list of at most 1000 domains (empty: any)."];
        }
        else
        {
            for (var i = 0; i < policy.SignUp.AllowedEmailDomains.Count; i++)
            {
                // Compared with an address's part after '@': a DNS name in lower case, as a person types it.
                if (policy.SignUp.AllowedEmailDomains[i] is not { Length: > 0 and <= 253 } domain || Uri.CheckHostName(domain) != UriHostNameType.Dns
                    || !domain.Contains('.') || domain != domain.ToLowerInvariant())
                {
                    errors[$"signUp.allowedEmailDomains[{i}]"] = ["Not an email domain in lower case (such as example.com)."];
                }
            }
        }

        Range(policy.Passwords.MinLength, 8, 128, "passwords.minLength");
        Range(policy.Passwords.MinStrength, 0, 4, "passwords.minStrength");
        Range(policy.Alerts.ErrorsPerMinute, 0, 1_000_000, "alerts.errorsPerMinute");
        if (policy.Alerts.Statuses is null || policy.Alerts.Statuses.Count is 0 or > 20
            || policy.Alerts.Statuses.Any(s => s is < 400 or > 599) || policy.Alerts.Statuses.Distinct().Count() != policy.Alerts.Statuses.Count)
        {
            errors["alerts.statuses"] = ["alerts.statuses must list 1 to 20 different error statuses, from 400 to 599."];
        }
        Range(policy.RateLimits.SignInPerIpPerMinute, 1, 100_000, "rateLimits.signInPerIpPerMinute");
        Range(policy.RateLimits.TokenRequestsPerClientPerSecond, 1, 1_000_000, "rateLimits.tokenRequestsPerClientPerSecond");
        Range(policy.RateLimits.RequestsPerTenantPerSecond, 1, 10_000_000, "rateLimits.requestsPerTenantPerSecond");

        var captcha = policy.Captcha;
        OneOf(captcha.Provider, ["none", "v3", "enterprise"], "captcha.provider");
        OneOf(captcha.BelowThreshold, ["deny", "challenge"], "captcha.belowThreshold");
        OneOf(captcha.WhenUnavailable, ["open", "closed"], "captcha.whenUnavailable");
        if (captcha.Threshold is < 0 or > 1 || double.IsNaN(captcha.Threshold))
        {
            errors["captcha.threshold"] = ["captcha.threshold must be from 0.0 to 1.0."];
        }

        // Both are written into the sign-in page's script: letters, digits and a few marks only.
        if (captcha.Provider is "v3" or "enterprise" && !Token(captcha.SiteKey, "-_"))
        {
            errors["captcha.siteKey"] = ["captcha.siteKey is required when a provider is chosen: 1-100 letters, digits, '-' and '_'."];
        }

        if (!Token(captcha.ExpectedAction, "_/"))
        {
            errors["captcha.expectedAction"] = ["captcha.expectedAction is 1-100 letters, digits, '_' and '/'."];
        }

        if (captcha.Provider == "v3" && string.IsNullOrWhiteSpace(captcha.SecretKey))
        {
            errors["captcha.secretKey"] = ["captcha.secretKey is required for v3."];
        }

        if (captcha.Provider == "enterprise" && (string.IsNullOrWhiteSpace(captcha.ProjectId) || string.IsNullOrWhiteSpace(captcha.ApiKey)))
        {
            errors["captcha.projectId"] = ["captcha.projectId and captcha.apiKey are required for enterprise."];
        }

        if (captcha.Hostnames is null || captcha.Hostnames.Count > 100)
        {
            errors["captcha.hostnames"] = ["captcha.hostnames must be a list of at most 100 host names."];
        }
        else
        {
            for (var i = 0; i < captcha.Hostnames.Count; i++)
            {
                // Compared with the host name Google saw the page on: a DNS name or an address, as a URL holds it.
                if (captcha.Hostnames[i] is not { Length: > 0 and <= 253 } host || Uri.CheckHostName(host) == UriHostNameType.Unknown)
                {
                    errors[$"captcha.hostnames[{i}]"] = ["Not a host name (such as id.example.com)."];
                }
            }
        }

        if (policy.Email.Smtp is { } smtp)
        {
            if (smtp.Host is not { Length: > 0 and <= 253 } host || Uri.CheckHostName(host) is UriHostNameType.Unknown or UriHostNameType.Basic)
            {
                errors["email.smtp.host"] = ["email.smtp.host is required: a host name or an IP address."];
            }

            Range(smtp.Port, 1, 65535, "email.smtp.port");
            if (smtp.From is not { Length: <= 320 } from || !MimeKit.MailboxAddress.TryParse(from, out var sender) || string.IsNullOrEmpty(sender.Address) || !sender.Address.Contains('@'))
            {
                errors["email.smtp.from"] = ["email.smtp.from is required: a sender such as \"Acme\" <no-reply@acme.example>."];
            }

            if (smtp.UserName is { Length: > 256 })
            {
                errors["email.smtp.userName"] = ["email.smtp.userName is at most 256 characters."];
            }

            // The stored form (protected): about 1.4 times the password and a header.
            if (smtp.Password is { Length: > 8192 })
            {
                errors["email.smtp.password"] = ["email.smtp.password is too long."];
            }
        }

        return errors;
    }

    private static bool Token(string? value, string marks) =>
        value is { Length: > 0 and <= 100 } && value.All(c => char.IsAsciiLetterOrDigit(c) || marks.Contains(c));

    private static void Ranges(List<string>? ranges, string path, Dictionary<string, string[]> errors)
    {
        if (ranges is null)
        {
            errors[path] = [$"{path} must be a list."];
            return;
        }

        if (ranges.Count > 1000)
        {
            errors[path] = [$"{path} holds at most 1000 entries."];
        }

        for (var i = 0; i < ranges.Count; i++)
        {
            if (!IpRanges.IsWellWritten(ranges[i]))
            {
                errors[$"{path}[{i}]"] = ["Not an IP address or CIDR range as written here: IPv4 in four decimal parts (203.0.113.7), IPv6 without a zone or an IPv4-mapped form, host bits zero (203.0.113.0/24)."];
            }
        }
    }
}
