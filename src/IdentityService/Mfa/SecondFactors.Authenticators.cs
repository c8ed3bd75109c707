using System.Security.Cryptography;
using IdentityService.Audit;
using IdentityService.Protection;
using IdentityService.Users;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Mfa;

/// <summary>
/// Authenticator apps (RFC 6238 TOTP): their secrets, set up at a sign-in or on the account's security page, checked,
/// and removed.
/// </summary>
public sealed partial class SecondFactors
{
    /// <summary>The enrollment's secret in Base32, for typing into an app by hand.</summary>
    public string EnrollmentSecret(Challenge challenge) => _secrets.Unprotect(challenge.Row.PendingTotpSecret!);

    /// <summary>A new authenticator secret, protected, for an enrollment outside sign-in (the account's security page).</summary>
    public string NewSecret() => _secrets.Protect(Base32(RandomNumberGenerator.GetBytes(20)));

    /// <summary>A protected secret in Base32, or null when it is not one of ours.</summary>
    public string? ReadSecret(string? protectedSecret)
    {
        if (string.IsNullOrEmpty(protectedSecret) || protectedSecret.Length > 1000)
        {
            return null;
        }

        try
        {
            return _secrets.Unprotect(protectedSecret);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    /// <summary>The <c>otpauth://</c> URI an authenticator app reads from the enrollment's QR code (Key Uri Format).</summary>
    public string EnrollmentUri(string secret, AppUser user)
    {
        var issuer = tenant.Required.DisplayName;
        var label = Uri.EscapeDataString($"{issuer}:{user.Email}");
        return $"otpauth://totp/{label}?secret={secret}&issuer={Uri.EscapeDataString(issuer)}&algorithm=SHA1&digits=6&period=30";
    }

    /// <summary>
    /// Keeps an authenticator the signed-in account set up on its security page, once a code from it is right; the
    /// account is then asked for a second factor at sign-in. False for a wrong code, or when it already has one.
    /// </summary>
    public async Task<bool> EnrollAsync(AppUser user, string protectedSecret, string? code, HttpContext http, CancellationToken cancellationToken)
    {
        code = Normalize(code);
        if (ReadSecret(protectedSecret) is not { } secret || code is null || !TotpMatches(secret, code, out var step))
        {
            return false;
        }

        if (!await KeepAuthenticatorAsync(user, protectedSecret, step, cancellationToken))
        {
            return false;
        }

        await WriteAccountEventAsync(http, user, AuditEventTypes.MfaEnrolled, new { factor = Totp, by = "security_page" });
        return true;
    }

    /// <summary>
    /// Whether a code is the account's authenticator's for now, and not one used before (it is then spent). Wrong codes
    /// count on the account's second-factor lockout, as at sign-in: false while it is locked.
    /// </summary>
    public async Task<bool> CheckAuthenticatorAsync(AppUser user, string? code, CancellationToken cancellationToken)
    {
        var lockout = (await policies.GetAsync(tenant.Required, cancellationToken)).Lockout;
        var key = LockoutKey(user.Id);
        if (await lockouts.BeginAttemptAsync(tenant.Required.Id, key, lockout.MaxFailedAttempts, cancellationToken) == AttemptSlot.Locked)
        {
            return false;
        }

        var right = false;
        try
        {
            code = Normalize(code);
            var stored = await db.Set<UserAuthenticator>().Where(a => a.UserId == user.Id).Select(a => a.ProtectedSecret).SingleOrDefaultAsync(cancellationToken);
            right = code is not null && TotpMatches(ReadSecret(stored), code, out var step) && await db.InTurnAsync(
                c => db.Set<UserAuthenticator>().Where(a => a.UserId == user.Id && a.LastTimeStep < step).ExecuteUpdateAsync(s => s.SetProperty(a => a.LastTimeStep, step), c),
                cancellationToken) == 1;
        }
        finally
        {
            await lockouts.CompleteAttemptAsync(tenant.Required.Id, key, right, lockout.MaxFailedAttempts, TimeSpan.FromMinutes(lockout.LockoutMinutes), CancellationToken.None);
        }

        return right;
    }

    /// <summary>Turns on or off asking the account a second factor at sign-in where the policy is optional (its own choice).</summary>
    public async Task SetAskedAsync(AppUser user, bool asked, HttpContext http)
    {
        user.TwoFactorEnabled = asked;
        await users.UpdateAsync(user);
        await WriteAccountEventAsync(http, user, asked ? AuditEventTypes.MfaEnrolled : AuditEventTypes.MfaRemoved, new { factor = "any", by = "security_page" });
    }

    /// <summary>
    /// Removes the account's authenticator on its own request (the page checked a code from it first). True when
    /// sign-ins still ask a second step (see <see cref="ForgetIfNoneLeftAsync"/>).
    /// </summary>
    public async Task<bool> RemoveOwnAsync(AppUser user, HttpContext http, CancellationToken cancellationToken)
    {
        await db.InTurnAsync(c => db.Set<UserAuthenticator>().Where(a => a.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);
        var stillAsked = await ForgetIfNoneLeftAsync(user, cancellationToken);
        await WriteAccountEventAsync(http, user, AuditEventTypes.MfaRemoved, new { factor = Totp, by = "security_page", stillAsked });
        return stillAsked;
    }

    /// <summary>
    /// Once the person removed one of their factors: where another one can still be asked (an app, a passkey, or a
    /// code by SMS or email the person chose to be asked), nothing else changes and the answer is true. Otherwise
    /// their recovery codes and remembered browsers go too and, where the policy is optional, sign-ins no longer ask
    /// a second step. Removing an app does not quietly turn off a second step the person still has.
    /// </summary>
    public async Task<bool> ForgetIfNoneLeftAsync(AppUser user, CancellationToken cancellationToken)
    {
        if (await HasAuthenticatorAsync(user, cancellationToken) || await passkeys.AnyAsync(user, cancellationToken))
        {
            return true;
        }

        // Asked: the person chose it (optional), or every account is (required).
        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        if ((user.TwoFactorEnabled || policy.Mfa.Mode == "required") && (await UsableFactorsAsync(user, policy, cancellationToken)).Count > 0)
        {
            return true;
        }

        await recovery.RemoveAllAsync(user, cancellationToken);
        await browsers.ForgetAllAsync(user, cancellationToken);
        if (user.TwoFactorEnabled)
        {
            user.TwoFactorEnabled = false;
            await users.UpdateAsync(user);
        }

        return false;
    }

    /// <summary>
    /// For an admin: removes an account's authenticator app, passkeys, recovery codes and remembered browsers, and stops
    /// asking it for a second factor when the policy is optional. True when there was an app or a passkey.
    /// </summary>
    public async Task<bool> RemoveAsync(AppUser user, CancellationToken cancellationToken)
    {
        var removed = await db.InTurnAsync(c => db.Set<UserAuthenticator>().Where(a => a.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);
        removed += await passkeys.RemoveAllAsync(user, cancellationToken);
        await recovery.RemoveAllAsync(user, cancellationToken);
        await browsers.ForgetAllAsync(user, cancellationToken);
        if (user.TwoFactorEnabled)
        {
            user.TwoFactorEnabled = false;
            await users.UpdateAsync(user);
        }

        return removed > 0;
    }

    /// <summary>The authenticator secret a TOTP code is checked against: the one being enrolled, or the account's.</summary>
    private async Task<string?> TotpSecretAsync(Challenge challenge, CancellationToken cancellationToken)
    {
        var protectedSecret = challenge.Row.PendingTotpSecret
            ?? await db.Set<UserAuthenticator>().Where(a => a.UserId == challenge.User.Id).Select(a => a.ProtectedSecret).SingleOrDefaultAsync(cancellationToken);
        return protectedSecret is null ? null : _secrets.Unprotect(protectedSecret);
    }

    /// <summary>
    /// Whether a code is one of the authenticator's for now (one 30 s step either side, RFC 6238's allowance for
    /// clock drift); <paramref name="step"/> is the step it matched.
    /// </summary>
    private bool TotpMatches(string? secret, string code, out long step)
    {
        step = 0;
        return secret is not null
            && new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret)).VerifyTotp(time.GetUtcNow().UtcDateTime, code, out step, OtpNet.VerificationWindow.RfcSpecifiedNetworkDelay);
    }

    /// <summary>
    /// Keeps an account's new authenticator, and asks it a second factor from now on; false when the account got one
    /// meanwhile (a parallel enrollment: this secret is not kept).
    /// </summary>
    private async Task<bool> KeepAuthenticatorAsync(AppUser user, string protectedSecret, long step, CancellationToken cancellationToken)
    {
        db.Add(new UserAuthenticator { Id = Guid.NewGuid(), UserId = user.Id, ProtectedSecret = protectedSecret, LastTimeStep = step, CreatedAt = time.GetUtcNow() });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            return false;
        }

        user.TwoFactorEnabled = true;
        await users.UpdateAsync(user);
        return true;
    }

    private Task WriteAccountEventAsync(HttpContext http, AppUser user, string type, object details) =>
        audit.AccountActionAsync(http, tenant.Required, user, type, details);

    private static string Base32(byte[] bytes) => OtpNet.Base32Encoding.ToString(bytes);
}
