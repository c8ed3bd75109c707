using IdentityService.Users;
using Microsoft.AspNetCore.Identity;

namespace IdentityService.SignIn;

/// <summary>
/// Password checks of the sign-in pipeline. Every refused attempt costs one hash too: an unknown email or
/// a locked account verifies a dummy hash, so the response time does not tell them from a wrong password.
/// </summary>
public sealed class PasswordSignIn(UserManager<AppUser> users, IPasswordHasher<AppUser> hasher, ILogger<PasswordSignIn> logger)
{
    private static readonly Lazy<string> DummyHash = new(() =>
        new PasswordHasher<AppUser>().HashPassword(new AppUser(), Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24))));

    /// <summary>Spends the time of one password check, for an attempt that is refused anyway.</summary>
    public void HashDummy(string password) =>
        hasher.VerifyHashedPassword(new AppUser(), DummyHash.Value, password.Length > 1024 ? password[..1024] : password);

    /// <summary>Whether the password is the user's; a hash made with older parameters is replaced by one made with today's.</summary>
    public async Task<bool> VerifyAsync(AppUser user, string password)
    {
        if (user.PasswordHash is null || password.Length is 0 or > 1024)
        {
            HashDummy(password);
            return false;
        }

        var result = hasher.VerifyHashedPassword(user, user.PasswordHash, password);
        if (result == PasswordVerificationResult.Failed)
        {
            return false;
        }

        if (result == PasswordVerificationResult.SuccessRehashNeeded)
        {
            user.PasswordHash = hasher.HashPassword(user, password);
            var update = await users.UpdateAsync(user);
            if (!update.Succeeded)
            {
                logger.LogWarning("Rehashing the password of user {UserId} failed: {Errors}", user.Id, string.Join(", ", update.Errors.Select(e => e.Code)));
            }
        }

        return true;
    }
}
