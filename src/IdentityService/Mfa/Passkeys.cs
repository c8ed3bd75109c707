using System.Security.Cryptography;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Protection;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Mfa;

/// <summary>
/// Passkeys (WebAuthn) as a second factor, through ASP.NET Core Identity's passkey handler: it makes the browser's
/// options, checks the attestation and the assertion (challenge, origin, relying party, signature, sign count), and
/// keeps the credential in Identity's <c>AspNetUserPasskeys</c>. What the handler keeps between the options and the
/// answer (its state) travels in the page's form, protected with Data Protection for 5 minutes and bound to the
/// account (registration) or to the sign-in's challenge (assertion), so no server state is held meanwhile; a sign-in
/// with a passkey alone spends its state, as the second step spends its challenge.
/// </summary>
public sealed class Passkeys(
    IdentityDb db, IPasskeyHandler<AppUser> handler, UserManager<AppUser> users, TenantContext tenant, AuditLog audit,
    IDataProtectionProvider dataProtection, IProtectionStore spent, TimeProvider time, ILogger<Passkeys> logger)
{
    public static readonly TimeSpan CeremonyLifetime = TimeSpan.FromMinutes(5);

    /// <summary>Longest name a person may give a passkey.</summary>
    public const int MaxNameLength = 60;

    private readonly IDataProtector _states = dataProtection.CreateProtector("IdentityService.Mfa.PasskeyState.v1");

    /// <summary>What the browser needs to make or use a passkey: the options for <c>navigator.credentials</c>, and the protected state to post back.</summary>
    public sealed record Ceremony(string OptionsJson, string State);

    public async Task<IList<UserPasskeyInfo>> ListAsync(AppUser user) => await users.GetPasskeysAsync(user);

    /// <summary>Whether the account has a passkey (without reading them).</summary>
    public Task<bool> AnyAsync(AppUser user, CancellationToken cancellationToken) =>
        db.UserPasskeys.AnyAsync(p => p.UserId == user.Id, cancellationToken);

    /// <summary>Options to register a new passkey for the account (its passkeys listed, so an authenticator does not make a second one).</summary>
    public async Task<Ceremony> BeginRegistrationAsync(AppUser user, HttpContext http)
    {
        var options = await handler.MakeCreationOptionsAsync(
            new PasskeyUserEntity { Id = user.Id.ToString(), Name = user.Email ?? user.Id.ToString(), DisplayName = user.Email ?? "" }, http);
        return new Ceremony(options.CreationOptionsJson, Protect($"create:{tenant.Required.Id}:{user.Id}", options.AttestationState));
    }

    /// <summary>
    /// Keeps the passkey the browser made, once the handler has checked it, under the name given; the account is then
    /// asked for a second factor at sign-in. The handler's reason when it is refused.
    /// </summary>
    public async Task<string?> CompleteRegistrationAsync(AppUser user, string? credentialJson, string? state, string? name, HttpContext http)
    {
        if (!Readable(credentialJson) || Unprotect($"create:{tenant.Required.Id}:{user.Id}", state) is not { } attestationState)
        {
            return "no_credential";
        }

        var result = await handler.PerformAttestationAsync(
            new PasskeyAttestationContext { CredentialJson = credentialJson, AttestationState = attestationState, HttpContext = http });
        if (!result.Succeeded || result.UserEntity.Id != user.Id.ToString())
        {
            logger.LogInformation("A passkey was not registered: {Reason}", result.Failure?.Message ?? "made for another account");
            return result.Failure?.Message ?? "wrong_account";
        }

        // Identity's handler looks for the credential id among this tenant's accounts only (its passkeys table has no
        // tenant): an id another tenant's account holds would be taken for that passkey, its name and count overwritten.
        var passkey = result.Passkey;
        if (await db.UserPasskeys.AnyAsync(p => p.CredentialId == passkey.CredentialId, http.RequestAborted))
        {
            logger.LogWarning("A passkey was not registered: its credential id is another account's");
            return "credential_taken";
        }

        passkey.Name = string.IsNullOrWhiteSpace(name) ? "Passkey" : name.Trim()[..Math.Min(name.Trim().Length, MaxNameLength)];
        var stored = await users.AddOrUpdatePasskeyAsync(user, passkey);
        if (!stored.Succeeded)
        {
            return "not_stored";
        }

        if (!user.TwoFactorEnabled)
        {
            user.TwoFactorEnabled = true;
            await users.UpdateAsync(user);
        }

        await WriteAsync(http, user, AuditEventTypes.MfaEnrolled, new { factor = SecondFactors.Passkey, name = passkey.Name, by = "security_page" });
        return null;
    }

    /// <summary>Removes one of the account's passkeys, by its credential id as the page shows it (Base64url).</summary>
    public async Task<bool> RemoveAsync(AppUser user, string? id, HttpContext http)
    {
        if (Decode(id) is not { } credentialId || await users.GetPasskeyAsync(user, credentialId) is not { } passkey)
        {
            return false;
        }

        var removed = await users.RemovePasskeyAsync(user, credentialId);
        if (removed.Succeeded)
        {
            await WriteAsync(http, user, AuditEventTypes.MfaRemoved, new { factor = SecondFactors.Passkey, name = passkey.Name, by = "security_page" });
        }

        return removed.Succeeded;
    }

    /// <summary>Removes all of an account's passkeys (an admin's removal of its second factors).</summary>
    public Task<int> RemoveAllAsync(AppUser user, CancellationToken cancellationToken) =>
        db.InTurnAsync(c => db.UserPasskeys.Where(p => p.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);

    /// <summary>Options to sign the challenge's account in with one of its passkeys.</summary>
    public async Task<Ceremony> BeginAssertionAsync(SecondFactors.Challenge challenge, HttpContext http)
    {
        var options = await handler.MakeRequestOptionsAsync(challenge.User, http);
        return new Ceremony(options.RequestOptionsJson, Protect($"get:{tenant.Required.Id}:{challenge.Row.Id}", options.AssertionState));
    }

    /// <summary>Whether the browser's answer is a signature by one of the challenge's account's passkeys, for this ceremony; its sign count is kept.</summary>
    public async Task<bool> VerifyAssertionAsync(SecondFactors.Challenge challenge, string? credentialJson, string? state, HttpContext http)
    {
        if (!Readable(credentialJson) || Unprotect($"get:{tenant.Required.Id}:{challenge.Row.Id}", state) is not { } assertionState)
        {
            return false;
        }

        var result = await handler.PerformAssertionAsync(
            new PasskeyAssertionContext { CredentialJson = credentialJson, AssertionState = assertionState, HttpContext = http });
        if (!result.Succeeded || result.User.Id != challenge.User.Id)
        {
            logger.LogInformation("A passkey's answer was refused: {Reason}", result.Failure?.Message ?? "another account's passkey");
            return false;
        }

        // The new sign count: a clone of the authenticator replaying an older count is refused next time.
        return (await users.AddOrUpdatePasskeyAsync(challenge.User, result.Passkey)).Succeeded;
    }

    /// <summary>Options to sign in with a passkey alone: no account named, the authenticator offers the ones it holds for this host.</summary>
    public async Task<Ceremony> BeginSignInAsync(HttpContext http)
    {
        var options = await handler.MakeRequestOptionsAsync(null, http);
        return new Ceremony(options.RequestOptionsJson, Protect($"signin:{tenant.Required.Id}", options.AssertionState));
    }

    /// <summary>
    /// The account whose passkey signed this ceremony's challenge, with the person verified by the authenticator (a
    /// PIN or a biometric: a passkey alone stands for two factors only then); its sign count is kept. Otherwise the
    /// reason it is refused.
    /// </summary>
    public async Task<(AppUser? User, string? Failure)> VerifySignInAsync(string? credentialJson, string? state, HttpContext http)
    {
        if (!Readable(credentialJson) || Unprotect($"signin:{tenant.Required.Id}", state) is not { } assertionState)
        {
            return (null, "no_credential");
        }

        var result = await handler.PerformAssertionAsync(
            new PasskeyAssertionContext { CredentialJson = credentialJson, AssertionState = assertionState, HttpContext = http });
        if (!result.Succeeded)
        {
            logger.LogInformation("A passkey sign-in was refused: {Reason}", result.Failure.Message);
            return (null, "passkey_refused");
        }

        if (!result.Passkey.IsUserVerified)
        {
            return (result.User, "user_not_verified");
        }

        // The ceremony signs in once: an answer sent again is refused, even from an authenticator whose signature
        // count stays 0 (synced passkeys), which Identity's counter check cannot catch.
        var used = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(state!)));
        if (!await spent.UseOnceAsync(tenant.Required.Id, $"passkey-signin:{used}", time.GetUtcNow() + CeremonyLifetime, http.RequestAborted))
        {
            logger.LogInformation("A passkey sign-in was refused: its ceremony was used before");
            return (null, "passkey_replayed");
        }

        return (await users.AddOrUpdatePasskeyAsync(result.User, result.Passkey)).Succeeded ? (result.User, null) : (result.User, "not_stored");
    }

    /// <summary>A browser's answer worth handing to the handler: present, and not past 64 KiB.</summary>
    private static bool Readable([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? credentialJson) =>
        !string.IsNullOrEmpty(credentialJson) && credentialJson.Length <= 64 * 1024;

    /// <summary>A credential id as the pages carry it.</summary>
    public static string Encode(byte[] credentialId) => WebEncoders.Base64UrlEncode(credentialId);

    private static byte[]? Decode(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 2048)
        {
            return null;
        }

        try
        {
            return WebEncoders.Base64UrlDecode(id);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private string Protect(string purpose, string? state) =>
        _states.CreateProtector(purpose).Protect($"{(time.GetUtcNow() + CeremonyLifetime).ToUnixTimeSeconds()}|{state}");

    private string? Unprotect(string purpose, string? state)
    {
        if (string.IsNullOrEmpty(state) || state.Length > 16 * 1024)
        {
            return null;
        }

        string payload;
        try
        {
            payload = _states.CreateProtector(purpose).Unprotect(state);
        }
        catch (CryptographicException)
        {
            return null;
        }

        var bar = payload.IndexOf('|');
        var fresh = bar > 0 && long.TryParse(payload.AsSpan(0, bar), out var expires) && time.GetUtcNow().ToUnixTimeSeconds() < expires;
        return fresh ? payload[(bar + 1)..] : null;
    }

    private Task WriteAsync(HttpContext http, AppUser user, string type, object details) =>
        audit.AccountActionAsync(http, tenant.Required, user, type, details);
}
