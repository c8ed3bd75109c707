using IdentityService.Users;
using Microsoft.AspNetCore.Identity;

namespace IdentityService.SignIn;

/// <summary>
/// Checks an email and password within the current tenant. An unknown email costs the same hash
/// as a known one (a dummy hash is verified), so neither the answer nor its time tells them apart.
/// </summary>
public sealed class PasswordSignIn(UserManager<AppUser> users, IPasswordHasher<AppUser> hasher, ILogger<PasswordSignIn> logger)
{
    private static readonly Lazy<string> DummyHash = new(() =>
        new PasswordHasher<AppUser>().HashPassword(new AppUser(), Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24))));

    /// <summary>The user whose password this is, or null: the caller shows one message whatever the cause.</summary>
    public async Task<AppUser?> CheckAsync(string? email, string? password)
    {
        if (string.IsNullOrWhiteSpace(email) || string.IsNullOrEmpty(password) || email.Length > 256 || password.Length > 1024)
        {
            hasher.VerifyHashedPassword(new AppUser(), DummyHash.Value, password ?? "");
            return null;
        }

        var user = await users.FindByEmailAsync(email.Trim());
        if (user?.PasswordHash is null)
        {
            hasher.VerifyHashedPassword(new AppUser(), DummyHash.Value, password);
            return null;
        }

        var result = hasher.VerifyHashedPassword(user, user.PasswordHash, password);
        if (result == PasswordVerificationResult.Failed)
        {
            return null;
        }

        if (result == PasswordVerificationResult.SuccessRehashNeeded)
        {
            // The hashing parameters changed since this hash was made: store a hash made with today's.
            user.PasswordHash = hasher.HashPassword(user, password);
            var update = await users.UpdateAsync(user);
            if (!update.Succeeded)
            {
                logger.LogWarning("Rehashing the password of user {UserId} failed: {Errors}", user.Id, string.Join(", ", update.Errors.Select(e => e.Code)));
            }
        }

        return user;
    }
}
