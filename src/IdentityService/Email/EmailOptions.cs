namespace IdentityService.Email;

/// <summary>The SMTP server the service sends its mail through (<c>Email:Smtp</c>). Without a host, no mail is sent.</summary>
public sealed class SmtpOptions
{
    public const string Section = "Email:Smtp";

    public string? Host { get; set; }

    public int Port { get; set; } = 587;

    public string? UserName { get; set; }

    public string? Password { get; set; }

    /// <summary>
    /// True (the default): TLS, implicit on port 465 and STARTTLS, required, elsewhere. False: plain SMTP, for a relay
    /// on the same host or network only.
    /// </summary>
    public bool UseTls { get; set; } = true;

    /// <summary>The sender, e.g. <c>"Acme sign-in" &lt;no-reply@id.example.com&gt;</c>.</summary>
    public string? From { get; set; }

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Host) && !string.IsNullOrWhiteSpace(From);
}
