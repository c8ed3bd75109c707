using IdentityService.Users;
using Microsoft.AspNetCore.Identity;

namespace IdentityService.SignIn;

/// <summary>
/// Password checks of the sign-in pipeline. Every refused attempt costs one hash too: an unknown email or
/// a locked account verifies a dummy hash, so the response time does not tell them from a wrong password.
/// </summary>
public sealed class PasswordSignIn(UserManager<AppUser> users, IPasswordHasher<AppUser> hasher, DummyPasswordHash dummy, ILogger<PasswordSignIn> logger)
{
    /// <summary>Spends the time of one password check, for an attempt that is refused anyway.</summary>
    public void HashDummy(string password) =>
        hasher.VerifyHashedPassword(new AppUser(), dummy.Get(hasher), password.Length > 1024 ? password[..1024] : password);

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

/// <summary>
/// The hash that refused attempts verify: made once per process by the configured hasher, of a random password,
/// so that verifying it costs what verifying a real user's current hash costs.
/// </summary>
public sealed class DummyPasswordHash
{
    private string? _hash;

    public string Get(IPasswordHasher<AppUser> hasher) =>
        _hash ??= hasher.HashPassword(new AppUser(), Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24)));
}
