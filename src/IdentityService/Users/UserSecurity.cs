using IdentityService.Policy;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;

namespace IdentityService.Users;

/// <summary>What every way of setting a password shares: the rules it must meet, and the grants it ends.</summary>
public static class UserSecurity
{
    public const int MaxPasswordLength = 1024;

    /// <summary>zxcvbn reads this many characters at most: its time grows with the length, and a longer password is long enough.</summary>
    private const int StrengthPrefix = 100;

    /// <summary>
    /// One zxcvbn estimator for the process, made on first use: it loads its word lists once (about 7 MiB kept),
    /// where the library's static entry point loads them for every password (30 ms and 8 MB of garbage each).
    /// It keeps no state between passwords; the account's words are passed with each.
    /// </summary>
    private static readonly Lazy<Zxcvbn.Zxcvbn> Estimator = new(() =>
    {
        var estimator = new Zxcvbn.Zxcvbn();
        estimator.EvaluatePassword("warm-up");
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return estimator;
    });

    /// <summary>What zxcvbn makes of a password: its score (0 to 4), and how long it would take to guess.</summary>
    public sealed record Strength(int Score, string CrackTime);

    /// <summary>
    /// Everything wrong with a new password for this account: the configured validators, the tenant's
    /// <see cref="PasswordPolicy"/> (length, zxcvbn strength, known breaches) and the longest password taken. Empty
    /// when it is good.
    /// </summary>
    public static async Task<List<string>> CheckPasswordAsync(UserManager<AppUser> users, AppUser user, string password, PasswordPolicy rules, Tenant tenant)
    {
        var errors = new List<string>();
        foreach (var validator in users.PasswordValidators.Where(v => v is not BreachedPasswordValidator))
        {
            var result = await validator.ValidateAsync(users, user, password);
            errors.AddRange(result.Errors.Select(e => e.Description));
        }

        if (password.Length < rules.MinLength)
        {
            errors.Add($"Passwords must be at least {rules.MinLength} characters.");
        }

        if (password.Length > MaxPasswordLength)
        {
            errors.Add($"Passwords must be at most {MaxPasswordLength} characters.");
        }

        if (errors.Count == 0 && rules.MinStrength > 0 && Evaluate(password, user, tenant) is { } strength && strength.Score < rules.MinStrength)
        {
            errors.Add($"This password is too easy to guess (strength {strength.Score} of 4, {rules.MinStrength} needed): "
                + "add a word or two, and avoid names, dates, keyboard patterns and words from this account.");
        }

        // Last, and only for an otherwise good password: it asks a service outside.
        foreach (var validator in errors.Count == 0 ? users.PasswordValidators.OfType<BreachedPasswordValidator>() : [])
        {
            errors.AddRange((await validator.ValidateAsync(users, user, password)).Errors.Select(e => e.Description));
        }

        return errors.Distinct().ToList();
    }

    /// <summary>What a live strength meter shows for a password being typed: zxcvbn's estimate, 0 past the longest password taken.</summary>
    public static Strength Meter(string password, AppUser? user, Tenant tenant) =>
        password.Length > MaxPasswordLength ? new Strength(0, "") : Evaluate(password, user, tenant);

    /// <summary>zxcvbn's estimate of a password, with the account's email and names and the tenant's name as words a guesser knows.</summary>
    public static Strength Evaluate(string password, AppUser? user, Tenant tenant)
    {
        var known = new List<string> { tenant.Id, tenant.DisplayName };
        if (user is not null)
        {
            known.AddRange(new[] { user.Email, user.Email?.Split('@')[0], user.Name, user.GivenName, user.FamilyName }.OfType<string>());
        }

        var result = Estimator.Value.EvaluatePassword(password.Length > StrengthPrefix ? password[..StrengthPrefix] : password, known);
        return new Strength(result.Score, result.CrackTimeDisplay);
    }

    /// <summary>
    /// Ends the user's grants: refresh tokens, and the access tokens of those sign-ins (each names its authorization,
    /// checked on every validation). Done when a password changes and when the user is deleted.
    /// </summary>
    public static async Task RevokeGrantsAsync(AppUser user, IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens)
    {
        await tokens.RevokeBySubjectAsync(user.Id.ToString());
        await authorizations.RevokeBySubjectAsync(user.Id.ToString());
    }
}
