using System.ComponentModel.DataAnnotations;

namespace IdentityService.Users;

/// <summary>
/// The <c>Passwords</c> section: the cost of ASP.NET Core Identity's PBKDF2-HMAC-SHA512 hasher. The default is
/// OWASP's recommendation for PBKDF2-HMAC-SHA512 (210,000 iterations, as Keycloak uses); Identity's own default is
/// 100,000. A hash made with fewer iterations is replaced at the user's next successful sign-in.
/// </summary>
public sealed class PasswordHashingOptions
{
    public const string Section = "Passwords";

    public const int DefaultHashIterations = 210_000;

    /// <summary>PBKDF2 iterations of a new password hash. Default: 210,000.</summary>
    [Range(100_000, 10_000_000, ErrorMessage = "Passwords:HashIterations must be between 100,000 and 10,000,000.")]
    public int HashIterations { get; set; } = DefaultHashIterations;
}
