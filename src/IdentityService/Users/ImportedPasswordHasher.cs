using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace IdentityService.Users;

/// <summary>
/// ASP.NET Core Identity's hasher, which also verifies the bcrypt hashes of users imported from another service
/// (<c>$2a$</c>, <c>$2b$</c>, <c>$2y$</c>, as most other identity services and frameworks keep them). A right
/// password against a bcrypt hash answers <see cref="PasswordVerificationResult.SuccessRehashNeeded"/>, so the
/// sign-in replaces it with Identity's own (PBKDF2) at once. New hashes are always Identity's.
/// </summary>
public sealed partial class ImportedPasswordHasher(IOptions<PasswordHasherOptions> options) : IPasswordHasher<AppUser>
{
    private readonly PasswordHasher<AppUser> _identity = new(options);

    /// <summary>A bcrypt hash as written by the usual libraries: version, cost, 22 characters of salt and 31 of hash.</summary>
    [GeneratedRegex(@"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")]
    public static partial Regex Bcrypt();

    public string HashPassword(AppUser user, string password) => _identity.HashPassword(user, password);

    public PasswordVerificationResult VerifyHashedPassword(AppUser user, string hashedPassword, string providedPassword)
    {
        if (!hashedPassword.StartsWith("$2", StringComparison.Ordinal))
        {
            return _identity.VerifyHashedPassword(user, hashedPassword, providedPassword);
        }

        try
        {
            return Bcrypt().IsMatch(hashedPassword) && BCrypt.Net.BCrypt.Verify(providedPassword, hashedPassword)
                ? PasswordVerificationResult.SuccessRehashNeeded
                : PasswordVerificationResult.Failed;
        }
        catch (BCrypt.Net.SaltParseException)
        {
            return PasswordVerificationResult.Failed;
        }
    }

    /// <summary>Whether a hash can be imported: Identity's (version 3, or version 2, which it verifies and replaces) or bcrypt.</summary>
    public static bool IsImportable(string hash)
    {
        if (Bcrypt().IsMatch(hash))
        {
            return true;
        }

        var bytes = new byte[hash.Length];
        if (hash.Length > 400 || !Convert.TryFromBase64String(hash, bytes, out var length) || length == 0)
        {
            return false;
        }

        // Version 3: marker 0x01, PRF, iterations, salt length, salt and subkey; version 2: marker 0x00, 16 + 32 bytes.
        return (bytes[0] == 0x01 && length >= 13 + 16 + 16) || (bytes[0] == 0x00 && length == 49);
    }
}
