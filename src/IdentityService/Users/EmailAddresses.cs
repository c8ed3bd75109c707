using System.Net.Mail;

namespace IdentityService.Users;

/// <summary>
/// The addresses an account may have: one mailbox written as mail is routed to it, so that one mailbox is one account.
/// .NET's parser also takes a domain with a trailing dot (<c>ada@acme.test.</c>, the same mailbox as
/// <c>ada@acme.test</c> but another account's address), an address literal (<c>ada@[127.0.0.1]</c>: a server, not a
/// domain) and a quoted local part; none of them is taken.
/// </summary>
internal static class EmailAddresses
{
    public const int MaxLength = 256;

    public static bool IsAcceptable(string email, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out MailAddress? parsed)
    {
        if (email.Length > MaxLength || !MailAddress.TryCreate(email, out parsed) || parsed.Address != email)
        {
            parsed = null;
            return false;
        }

        return !parsed.User.StartsWith('"') && !parsed.Host.StartsWith('[') && !parsed.Host.EndsWith('.') && !parsed.Host.Contains("..", StringComparison.Ordinal);
    }
}
