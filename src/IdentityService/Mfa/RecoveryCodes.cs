using System.Security.Cryptography;
using System.Text;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Email;
using IdentityService.Policy;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Mfa;

/// <summary>
/// An account's recovery codes: ten codes of 16 characters (80 random bits each, Crockford's Base32, shown as
/// <c>XXXX-XXXX-XXXX-XXXX</c>), each good once as the second step of a sign-in when the usual factor is lost.
/// They are shown once, when made; only their SHA-256 is stored. Making new ones ends the old set.
/// </summary>
public sealed class RecoveryCodes(IdentityDb db, TenantContext tenant, Mailer mailer, AuditLog audit, TimeProvider time)
{
    public const int Count = 10;

    private const int Length = 16;

    // Crockford's Base32: no I, L, O or U, so a code read aloud or typed from paper is not mistaken.
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    /// <summary>Makes a new set for the account, replacing any set before; the codes, to show once.</summary>
    public async Task<IReadOnlyList<string>> CreateAsync(AppUser user, HttpContext http, CancellationToken cancellationToken)
    {
        var codes = new List<string>(Count);
        for (var i = 0; i < Count; i++)
        {
            var chars = new char[Length];
            for (var j = 0; j < Length; j++)
            {
                chars[j] = Alphabet[RandomNumberGenerator.GetInt32(Alphabet.Length)];
            }

            codes.Add(new string(chars));
        }

        var now = time.GetUtcNow();
        await RemoveAllAsync(user, cancellationToken);
        foreach (var code in codes)
        {
            db.Add(new RecoveryCode { Id = Guid.NewGuid(), UserId = user.Id, CodeHash = Hash(user.Id, code), CreatedAt = now });
        }

        await db.SaveChangesAsync(cancellationToken);
        await audit.AccountActionAsync(http, tenant.Required, user, AuditEventTypes.MfaRecoveryCodesCreated, new { count = Count });
        return codes.Select(Format).ToList();
    }

    /// <summary>How many of the account's codes are still unused.</summary>
    public Task<int> LeftAsync(AppUser user, CancellationToken cancellationToken) =>
        db.Set<RecoveryCode>().CountAsync(c => c.UserId == user.Id && c.UsedAt == null, cancellationToken);

    /// <summary>
    /// Spends one of the account's unused codes, as typed (any case, with or without dashes and spaces); false when
    /// it is not one. Of two requests racing with one code, one spends it.
    /// </summary>
    public async Task<bool> RedeemAsync(AppUser user, string? typed, CancellationToken cancellationToken)
    {
        if (Normalize(typed) is not { } code)
        {
            return false;
        }

        var hash = Hash(user.Id, code);
        var now = time.GetUtcNow();
        return await db.InTurnAsync(
            c => db.Set<RecoveryCode>().Where(r => r.UserId == user.Id && r.CodeHash == hash && r.UsedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.UsedAt, now), c),
            cancellationToken) == 1;
    }

    /// <summary>Tells the account's owner a code was used, and how many are left (a code used by someone else is a stolen sheet).</summary>
    public async Task NotifyUsedAsync(AppUser user, TenantPolicy policy, CancellationToken cancellationToken)
    {
        if (!user.EmailConfirmed || string.IsNullOrEmpty(user.Email) || !mailer.IsConfiguredFor(policy))
        {
            return;
        }

        var left = await LeftAsync(user, cancellationToken);
        var name = tenant.Required.DisplayName;
        mailer.Enqueue(policy, user.Email, $"A recovery code was used to sign in to {name}",
            $"""
            A recovery code was used to sign in to your {name} account at {time.GetUtcNow():yyyy-MM-dd HH:mm} UTC. You have {left} left.

            If this was not you, someone has your password and your recovery codes: reset your password and make new codes on your account's security page.
            """);
    }

    public Task<int> RemoveAllAsync(AppUser user, CancellationToken cancellationToken) =>
        db.InTurnAsync(c => db.Set<RecoveryCode>().Where(r => r.UserId == user.Id).ExecuteDeleteAsync(c), cancellationToken);

    /// <summary>A code as typed, in its stored form (16 characters of the alphabet), or null when it cannot be one.</summary>
    public static string? Normalize(string? typed)
    {
        if (typed is null || typed.Length > 40)
        {
            return null;
        }

        var chars = new StringBuilder(Length);
        foreach (var c in typed)
        {
            if (c is ' ' or '-')
            {
                continue;
            }

            // Crockford's decoding: O reads as 0, I and L as 1.
            var upper = char.ToUpperInvariant(c) switch { 'O' => '0', 'I' or 'L' => '1', var other => other };
            if (!Alphabet.Contains(upper, StringComparison.Ordinal) || chars.Length == Length)
            {
                return null;
            }

            chars.Append(upper);
        }

        return chars.Length == Length ? chars.ToString() : null;
    }

    private static string Format(string code) => $"{code[..4]}-{code[4..8]}-{code[8..12]}-{code[12..]}";

    private static byte[] Hash(Guid userId, string code) => SHA256.HashData(Encoding.UTF8.GetBytes($"{userId:N}:{code}"));
}
