using System.Security.Cryptography;
using System.Text;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Email;
using IdentityService.Pipeline;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.SignIn;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Mfa;

/// <summary>
/// The second step of a sign-in whose password was right and that the pipeline challenged: a code from the
/// account's authenticator app (TOTP), or a code sent by email or SMS. The browser holds the challenge in a
/// cookie for 10 minutes; 5 wrong codes end it, and wrong codes count against the account's lockout
/// (the policy's <c>lockout</c>), so a stolen password does not buy unlimited guesses. An account with no
/// factor yet enrolls an authenticator here, once, when the tenant requires a second factor.
/// </summary>
public sealed partial class SecondFactors(
    IdentityDb db, UserManager<AppUser> users, TenantContext tenant, PolicyStore policies, Mailer mailer, TwilioSms sms,
    RecoveryCodes recovery, Passkeys passkeys, TrustedBrowsers browsers,
    IDataProtectionProvider dataProtection, ILockoutStore lockouts, IProtectionStore protection, AuditLog audit, TimeProvider time)
{
    public const string CookieName = ".IdentityService.Mfa";
    public const string Totp = "totp";
    public const string Sms = "sms";
    public const string Email = "email";
    public const string Passkey = "passkey";

    /// <summary>One of the account's recovery codes, for when its usual factor is lost (not a policy's factor: any account may keep them).</summary>
    public const string Recovery = "recovery";

    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    /// <summary>Wrong codes one challenge takes before it ends.</summary>
    public const int MaxFailedCodes = 5;

    /// <summary>Codes one challenge may send: enough for a lost message, too few to flood a phone.</summary>
    public const int MaxCodesSent = 3;

    /// <summary>Codes an account may be sent per hour, across challenges (an SMS costs money: a password is not a free pump).</summary>
    public const int CodesPerAccountPerHour = 10;

    private readonly IDataProtector _secrets = TotpSecrets(dataProtection);

    /// <summary>What protects an authenticator app's secret (Base32) at rest.</summary>
    internal static IDataProtector TotpSecrets(IDataProtectionProvider dataProtection) => dataProtection.CreateProtector("IdentityService.Mfa.TotpSecret.v1");

    /// <summary>A challenge being answered: its row, its account, and what the account can use.</summary>
    public sealed record Challenge(MfaChallenge Row, AppUser User, string Token, IReadOnlyList<string> Factors, TenantPolicy Policy, int RecoveryCodesLeft)
    {
        /// <summary>True when the account has no factor and sets up an authenticator app now.</summary>
        public bool Enrolling => Row.PendingTotpSecret is not null;
    }

    public enum Outcome
    {
        Succeeded,
        WrongCode,

        /// <summary>The challenge is over (too many wrong codes, or expired): sign in again.</summary>
        Ended,

        /// <summary>Too many wrong codes for the account: its second factor is locked for the lockout's minutes.</summary>
        Locked,
    }

    /// <summary>
    /// Starts a challenge for a sign-in the pipeline challenged, and gives the browser its cookie. False when the
    /// account has nothing to answer it with (and cannot enroll now): the sign-in cannot go on.
    /// </summary>
    public async Task<bool> BeginAsync(SignInContext context, string? reason, CancellationToken cancellationToken)
    {
        var user = context.User!;
        var factors = await UsableFactorsAsync(user, context.Policy, cancellationToken);
        string? pending = null;
        if (factors.Count == 0 && await recovery.LeftAsync(user, cancellationToken) == 0)
        {
            // Trust on first use, only where the tenant requires a second factor of everyone: a step-up for risk
            // must not be answered by a factor the password alone just set up.
            if (reason != "mfa_required" || !context.Policy.Mfa.Factors.Contains(Totp))
            {
                return false;
            }

            pending = _secrets.Protect(Base32(RandomNumberGenerator.GetBytes(20)));
        }

        var token = OpaqueTokens.New();
        var now = time.GetUtcNow();
        await db.InTurnAsync(c => db.Set<MfaChallenge>().Where(x => x.UserId == user.Id && x.ExpiresAt <= now).ExecuteDeleteAsync(c), cancellationToken);
        db.Add(new MfaChallenge
        {
            Id = Guid.NewGuid(),
            UserId = user.Id,
            TokenHash = OpaqueTokens.Hash(token),
            Reason = reason ?? "",
            ClientId = context.ClientId is { Length: <= 100 } client ? client : null,
            Country = context.Country,
            CreatedAt = now,
            ExpiresAt = now + Lifetime,
            PendingTotpSecret = pending,
        });
        await db.SaveChangesAsync(cancellationToken);
        var http = context.Http;
        // A browser-session cookie: the challenge's row says when it ends, by the service's clock.
        http.Response.Cookies.Append(CookieName, token, TenantCookies.Options(http.Request, SameSiteMode.Strict));
        return true;
    }

    /// <summary>The browser's challenge, while it is unexpired and unspent; null otherwise.</summary>
    public async Task<Challenge?> LoadAsync(HttpContext http, CancellationToken cancellationToken)
    {
        var token = http.Request.Cookies[CookieName];
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return null;
        }

        var hash = OpaqueTokens.Hash(token);
        var row = await db.Set<MfaChallenge>().AsNoTracking().SingleOrDefaultAsync(x => x.TokenHash == hash, cancellationToken);
        if (row is null || row.ExpiresAt <= time.GetUtcNow())
        {
            return null;
        }

        var user = await users.FindByIdAsync(row.UserId.ToString());
        if (user is null)
        {
            return null;
        }

        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        if (row.PendingTotpSecret is not null)
        {
            return new Challenge(row, user, token, [Totp], policy, 0);
        }

        var factors = await UsableFactorsAsync(user, policy, cancellationToken);
        return new Challenge(row, user, token, factors, policy, await recovery.LeftAsync(user, cancellationToken));
    }

    /// <summary>Ends the browser's challenge (signing in again starts a new one).</summary>
    public static void Forget(HttpContext http) =>
        http.Response.Cookies.Delete(CookieName, new CookieOptions { Path = TenantCookies.Path(http.Request) });

    public Task<bool> HasAuthenticatorAsync(AppUser user, CancellationToken cancellationToken) =>
        db.Set<UserAuthenticator>().AnyAsync(a => a.UserId == user.Id, cancellationToken);

    /// <summary>The factors the account can answer with now: enrolled or verified, allowed by the policy, and configured here.</summary>
    public async Task<List<string>> UsableFactorsAsync(AppUser user, TenantPolicy policy, CancellationToken cancellationToken)
    {
        var allowed = policy.Mfa.Factors;
        var factors = new List<string>(4);
        if (allowed.Contains(Passkey) && await passkeys.AnyAsync(user, cancellationToken))
        {
            factors.Add(Passkey);
        }

        if (allowed.Contains(Totp) && await db.Set<UserAuthenticator>().AnyAsync(a => a.UserId == user.Id, cancellationToken))
        {
            factors.Add(Totp);
        }

        if (allowed.Contains(Sms) && sms.IsConfigured && user.PhoneNumberConfirmed && !string.IsNullOrEmpty(user.PhoneNumber))
        {
            factors.Add(Sms);
        }

        if (allowed.Contains(Email) && mailer.IsConfiguredFor(policy) && user.EmailConfirmed && !string.IsNullOrEmpty(user.Email))
        {
            factors.Add(Email);
        }

        return factors;
    }

    /// <summary>
    /// Sends a new code by email or SMS (a code sent before stops working). False when the factor is not the
    /// account's, the challenge or the account sent too many, or the message could not be handed over.
    /// </summary>
    public async Task<bool> SendCodeAsync(Challenge challenge, string factor, HttpContext http, CancellationToken cancellationToken)
    {
        if (factor is not (Email or Sms) || !challenge.Factors.Contains(factor) || challenge.Row.CodesSent >= MaxCodesSent)
        {
            return false;
        }

        var user = challenge.User;
        if (await protection.IncrementAsync(tenant.Required.Id, $"rl:mfa-code:{user.Id}", TimeSpan.FromHours(1), cancellationToken) > CodesPerAccountPerHour)
        {
            await WriteAsync(http, challenge, AuditEventTypes.MfaCodeSent, "failed", factor, "too_many_codes");
            return false;
        }

        var code = RandomNumberGenerator.GetInt32(0, 1_000_000).ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
        var id = challenge.Row.Id;
        var sent = challenge.Row.CodesSent;
        // Claimed by a conditional update: two sends racing on one challenge cannot pass its limit.
        var claimed = await db.InTurnAsync(
            c => db.Set<MfaChallenge>().Where(x => x.Id == id && x.CodesSent == sent).ExecuteUpdateAsync(
                s => s.SetProperty(x => x.CodesSent, sent + 1).SetProperty(x => x.CodeFactor, factor).SetProperty(x => x.CodeHash, CodeHash(challenge.Token, factor, code)),
                c),
            cancellationToken);
        if (claimed == 0)
        {
            return false;
        }

        challenge.Row.CodesSent = sent + 1;
        challenge.Row.CodeFactor = factor;
        var name = tenant.Required.DisplayName;
        var minutes = (int)Math.Ceiling((challenge.Row.ExpiresAt - time.GetUtcNow()).TotalMinutes);
        var delivered = factor == Email
            ? mailer.Enqueue(challenge.Policy, user.Email!, $"{code} is your {name} sign-in code",
                $"""
                Your {name} sign-in code is {code}. It works once, for the next {minutes} minutes.

                If you are not signing in to {name} right now, someone knows your password: change it.
                """)
            : await sms.SendAsync(user.PhoneNumber!, $"{code} is your {name} sign-in code. Do not share it.", cancellationToken);
        await WriteAsync(http, challenge, AuditEventTypes.MfaCodeSent, delivered ? "succeeded" : "failed", factor, delivered ? null : "not_sent");
        return delivered;
    }

    /// <summary>Checks a code for the challenge; on success the challenge is spent and, when enrolling, the authenticator kept.</summary>
    /// <remarks>For a passkey, <paramref name="code"/> is the browser's answer (JSON) and <paramref name="state"/> the ceremony's protected state.</remarks>
    public async Task<Outcome> VerifyAsync(Challenge challenge, string factor, string? code, HttpContext http, CancellationToken cancellationToken, string? state = null)
    {
        var user = challenge.User;
        var lockout = challenge.Policy.Lockout;
        var key = LockoutKey(user.Id);
        var typed = code;
        code = Normalize(code);
        if (await lockouts.BeginAttemptAsync(tenant.Required.Id, key, lockout.MaxFailedAttempts, cancellationToken) == AttemptSlot.Locked)
        {
            await WriteAsync(http, challenge, AuditEventTypes.SignInFailed, "failed", factor, "mfa_locked");
            return Outcome.Locked;
        }

        var right = false;
        long step = 0;
        try
        {
            if (factor == Recovery)
            {
                right = challenge.RecoveryCodesLeft > 0 && await recovery.RedeemAsync(user, typed, cancellationToken);
            }
            else if (factor == Passkey)
            {
                right = challenge.Factors.Contains(Passkey) && await passkeys.VerifyAssertionAsync(challenge, typed, state, http);
            }
            else if (challenge.Factors.Contains(factor) && code is not null)
            {
                right = factor == Totp
                    ? TotpMatches(await TotpSecretAsync(challenge, cancellationToken), code, out step)
                    : challenge.Row.CodeFactor == factor && challenge.Row.CodeHash is { } stored
                        && CryptographicOperations.FixedTimeEquals(stored, CodeHash(challenge.Token, factor, code));
            }

            if (right)
            {
                right = await SpendAsync(challenge, step, http, cancellationToken);
            }
        }
        finally
        {
            await lockouts.CompleteAttemptAsync(tenant.Required.Id, key, right, lockout.MaxFailedAttempts, TimeSpan.FromMinutes(lockout.LockoutMinutes), CancellationToken.None);
        }

        if (right)
        {
            await WriteAsync(http, challenge, AuditEventTypes.SignInSucceeded, "succeeded", factor, null);
            if (factor == Recovery)
            {
                await recovery.NotifyUsedAsync(user, challenge.Policy, CancellationToken.None);
            }

            return Outcome.Succeeded;
        }

        // Counted in the row, on its value there (not the one this request read): wrong codes sent at once all count,
        // and the one that would be the fifth (or finds the challenge gone) ends it.
        var id = challenge.Row.Id;
        var counted = await db.InTurnAsync(
            c => db.Set<MfaChallenge>().Where(x => x.Id == id && x.FailedCodes < MaxFailedCodes - 1)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.FailedCodes, x => x.FailedCodes + 1), c),
            cancellationToken);
        var ended = counted == 0;
        if (ended)
        {
            await db.InTurnAsync(c => db.Set<MfaChallenge>().Where(x => x.Id == id).ExecuteDeleteAsync(c), cancellationToken);
        }

        await WriteAsync(http, challenge, AuditEventTypes.SignInFailed, "failed", factor, ended ? "mfa_code_invalid_challenge_ended" : "mfa_code_invalid");
        return ended ? Outcome.Ended : Outcome.WrongCode;
    }

    /// <summary>The lockout counter of an account's second factor; an admin's unlock of the account ends it too.</summary>
    public static string LockoutKey(Guid userId) => $"{userId}:mfa";

    /// <summary>
    /// Spends the TOTP step (a code is never accepted twice, even across challenges) and the challenge (of two
    /// requests racing with one code, one signs in); when enrolling, keeps the authenticator.
    /// </summary>
    private async Task<bool> SpendAsync(Challenge challenge, long step, HttpContext http, CancellationToken cancellationToken)
    {
        var user = challenge.User;
        var enrolling = challenge.Row.PendingTotpSecret;
        if (enrolling is null && step != 0 && await db.InTurnAsync(
                c => db.Set<UserAuthenticator>().Where(a => a.UserId == user.Id && a.LastTimeStep < step).ExecuteUpdateAsync(s => s.SetProperty(a => a.LastTimeStep, step), c),
                cancellationToken) == 0)
        {
            return false;
        }

        var id = challenge.Row.Id;
        if (await db.InTurnAsync(c => db.Set<MfaChallenge>().Where(x => x.Id == id).ExecuteDeleteAsync(c), cancellationToken) == 0)
        {
            return false;
        }

        if (enrolling is not null)
        {
            if (!await KeepAuthenticatorAsync(user, enrolling, step, cancellationToken))
            {
                return false;
            }

            await WriteAsync(http, challenge, AuditEventTypes.MfaEnrolled, "succeeded", Totp, null);
        }

        return true;
    }

    private Task WriteAsync(HttpContext http, Challenge challenge, string type, string outcome, string factor, string? reason) =>
        audit.WriteAsync(tenant.Required, new AuditEvent
        {
            Type = type,
            Outcome = outcome,
            Reason = reason,
            DecidedBy = type.StartsWith("signin.", StringComparison.Ordinal) ? "SecondFactor" : null,
            UserId = challenge.User.Id,
            Identifier = challenge.User.Email,
            ClientId = challenge.Row.ClientId,
            Country = challenge.Row.Country,
            Ip = IpRanges.ClientOf(http).ToString(),
            UserAgent = http.Request.Headers.UserAgent.ToString() is { Length: > 0 } agent ? agent[..Math.Min(agent.Length, 512)] : null,
            Actor = type.StartsWith("mfa.", StringComparison.Ordinal) ? $"user:{challenge.User.Id}@{tenant.Required.Id}" : null,
            Details = System.Text.Json.JsonSerializer.Serialize(new { factor, challengeReason = challenge.Row.Reason }, AuditLog.Json),
        });

    /// <summary>A code as typed (spaces allowed), if it is six digits; null otherwise.</summary>
    private static string? Normalize(string? code) =>
        code?.Replace(" ", "", StringComparison.Ordinal).Trim() is { Length: 6 } digits && digits.All(char.IsAsciiDigit) ? digits : null;

    private static byte[] CodeHash(string token, string factor, string code) =>
        HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), Encoding.UTF8.GetBytes($"{factor}:{code}"));
}
