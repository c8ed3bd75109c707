using System.Text;
using System.Text.Json;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Users;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Management;

/// <summary>
/// <c>POST /api/v1/tenants/{tenant}/users/import</c>: users brought in from another service, or from this service's
/// export, as NDJSON (one user a line, the fields the users API shows, and <c>passwordHash</c>). Each line is taken or
/// refused on its own; the answer says what became of every line. <c>?dryRun=true</c> checks without creating.
/// </summary>
internal static partial class UsersApi
{
    public const int MaxImportLines = 10_000;
    public const long MaxImportBytes = 20 * 1024 * 1024;

    /// <summary>A line of an import: what the users API and the export show (unknown fields, such as <c>mfaEnrolled</c>, are ignored).</summary>
    public sealed class ImportedUser : UserFields
    {
        /// <summary>Kept, so that the <c>sub</c> the apps know stays the same; a new one when absent.</summary>
        public Guid? Id { get; set; }

        /// <summary>ASP.NET Core Identity's (as this service exports it) or bcrypt; none: the person sets one through "Forgot your password?".</summary>
        public string? PasswordHash { get; set; }

        public DateTimeOffset? CreatedAt { get; set; }

        public string? AcceptedTermsUrl { get; set; }

        public DateTimeOffset? TermsAcceptedAt { get; set; }

        /// <summary>
        /// The secret of the person's authenticator app (Base32, as in its <c>otpauth://</c> link; RFC 6238's usual
        /// SHA-1, 6 digits, 30 s): the account asks it as a second factor, and the person keeps the app they have.
        /// </summary>
        public string? TotpSecret { get; set; }
    }

    public sealed record ImportLine(int Line, string? Email, string Outcome, Guid? Id = null, Dictionary<string, string[]>? Errors = null);

    public sealed record ImportAnswer(bool DryRun, int Created, int Existing, int Invalid, IReadOnlyList<ImportLine> Lines);

    private static readonly JsonSerializerOptions ImportOptions = new(JsonSerializerDefaults.Web) { AllowDuplicateProperties = false, MaxDepth = 16 };

    private static async Task<IResult> ImportAsync(
        HttpContext http, UserManager<AppUser> users, RoleManager<AppRole> roles, IdentityDb db, TimeProvider time, AuditLog audit, IDataProtectionProvider protection)
    {
        var totpSecrets = Mfa.SecondFactors.TotpSecrets(protection);
        var dryRun = http.Request.Query["dryRun"].ToString();
        if (dryRun is not ("" or "true" or "false"))
        {
            return Problems.Validation("dryRun", "dryRun must be true or false.");
        }

        if (http.Request.ContentType?.Split(';')[0].Trim() is not ("application/x-ndjson" or "application/jsonl"))
        {
            return Problems.Status(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "The body must be application/x-ndjson: one user a line.");
        }

        if (await ReadLinesAsync(http.Request) is not { } lines)
        {
            return Problems.Status(StatusCodes.Status413PayloadTooLarge, "too_large",
                $"An import holds at most {MaxImportLines} users and {MaxImportBytes / (1024 * 1024)} MiB: split it.");
        }

        var results = new List<ImportLine>(lines.Count);
        for (var i = 0; i < lines.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i]))
            {
                continue;
            }

            results.Add(await ImportLineAsync(http, users, roles, db, time, audit, totpSecrets, i + 1, lines[i], dryRun == "true"));
            db.ChangeTracker.Clear();
        }

        return Results.Ok(new ImportAnswer(
            dryRun == "true", results.Count(r => r.Outcome is "created" or "valid"), results.Count(r => r.Outcome == "exists"), results.Count(r => r.Outcome == "invalid"), results));
    }

    /// <summary>The body's lines; null past <see cref="MaxImportLines"/> or <see cref="MaxImportBytes"/>.</summary>
    private static async Task<List<string>?> ReadLinesAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxImportBytes)
        {
            return null;
        }

        var lines = new List<string>();
        long bytes = 0;
        try
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            while (await reader.ReadLineAsync(request.HttpContext.RequestAborted) is { } line)
            {
                bytes += line.Length + 1;
                if (lines.Count == MaxImportLines || bytes > MaxImportBytes)
                {
                    return null;
                }

                lines.Add(line);
            }
        }
        catch (BadHttpRequestException)
        {
            return null; // past the server's own limit on a body
        }

        return lines;
    }

    private static async Task<ImportLine> ImportLineAsync(
        HttpContext http, UserManager<AppUser> users, RoleManager<AppRole> roles, IdentityDb db, TimeProvider time, AuditLog audit, IDataProtector totpSecrets,
        int number, string text, bool dryRun)
    {
        ImportedUser? line;
        try
        {
            line = JsonSerializer.Deserialize<ImportedUser>(text, ImportOptions);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            return new(number, null, "invalid", Errors: new() { ["$"] = ["This line is not a JSON object of a user: " + (e is JsonException json ? json.Message : "malformed.")] });
        }

        if (line is null)
        {
            return new(number, null, "invalid", Errors: new() { ["$"] = ["This line is not a JSON object of a user."] });
        }

        var errors = new Dictionary<string, string[]>();
        // Times are kept as their instant in UTC, whatever offset the line gives (PostgreSQL stores no other).
        var user = new AppUser { Id = line.Id ?? Guid.NewGuid(), CreatedAt = line.CreatedAt?.ToUniversalTime() ?? time.GetUtcNow() };
        if (line.Email is null)
        {
            errors["email"] = ["email is required."];
        }

        if (line.Id == Guid.Empty)
        {
            errors["id"] = ["id cannot be the nil UUID: leave it out for a new one."];
        }

        Apply(user, line, errors);
        user.EmailConfirmed = line.EmailVerified ?? false;
        if (line.PasswordHash is { } hash && !ImportedPasswordHasher.IsImportable(hash))
        {
            errors["passwordHash"] = ["passwordHash must be ASP.NET Core Identity's (version 2 or 3, base64) or bcrypt ($2a$, $2b$ or $2y$)."];
        }

        var totpSecret = line.TotpSecret is null ? null : TotpSecret(line.TotpSecret);
        if (line.TotpSecret is not null && totpSecret is null)
        {
            errors["totpSecret"] = ["totpSecret must be an authenticator app's secret: Base32 of 80 to 512 bits."];
        }

        if (line.AcceptedTermsUrl is { Length: > 2000 })
        {
            errors["acceptedTermsUrl"] = ["acceptedTermsUrl is at most 2000 characters."];
        }

        if (errors.Count > 0)
        {
            return new(number, line.Email, "invalid", Errors: errors);
        }

        if (await users.FindByEmailAsync(user.Email!) is not null)
        {
            return new(number, user.Email, "exists");
        }

        if (line.Id is not null && await db.Users.IgnoreQueryFilters().AnyAsync(u => u.Id == user.Id, http.RequestAborted))
        {
            return new(number, user.Email, "invalid", Errors: new() { ["id"] = ["This id is taken: leave it out for a new one."] });
        }

        if (dryRun)
        {
            return new(number, user.Email, "valid", user.Id);
        }

        // The roles first: a line is never refused with its user made.
        if (await EnsureRolesAsync(db, roles, line.Roles) is { Succeeded: false } made)
        {
            return new(number, user.Email, "invalid", Errors: new() { ["roles"] = made.Errors.Select(e => e.Description).ToArray() });
        }

        user.PasswordHash = line.PasswordHash;
        user.AcceptedTermsUrl = line.AcceptedTermsUrl;
        user.TermsAcceptedAt = line.AcceptedTermsUrl is null ? null : line.TermsAcceptedAt?.ToUniversalTime();
        if (totpSecret is not null)
        {
            // Saved with the account: an imported account never exists without the factor it had.
            db.Add(new Mfa.UserAuthenticator { Id = Guid.NewGuid(), UserId = user.Id, ProtectedSecret = totpSecrets.Protect(totpSecret), CreatedAt = time.GetUtcNow() });
            user.TwoFactorEnabled = true;
        }

        IdentityResult result;
        try
        {
            result = await users.CreateAsync(user);
        }
        catch (DbUpdateException)
        {
            // Made meanwhile by another request; anything else the database refused is this line's error, not "exists".
            db.ChangeTracker.Clear();
            return await users.FindByEmailAsync(user.Email!) is not null
                ? new(number, user.Email, "exists")
                : new(number, user.Email, "invalid", Errors: new() { ["$"] = ["The database refused this user."] });
        }

        if (result.Succeeded)
        {
            result = await SetRolesAsync(db, users, roles, user, line.Roles);
        }

        if (!result.Succeeded)
        {
            return new(number, user.Email, "invalid", Errors: new() { ["user"] = result.Errors.Select(e => e.Description).ToArray() });
        }

        await audit.AdminActionAsync(http, AuditEventTypes.UserCreated, userId: user.Id, details: new
        {
            via = "import",
            fields = AuditLog.FieldsSet(line).Select(f => f switch { "passwordHash" => "password", "totpSecret" => "totp", _ => f }).ToArray(),
        });
        return new(number, user.Email, "created", user.Id);
    }

    /// <summary>A TOTP secret as authenticator apps show it (any case, spaces, padding), in canonical Base32; null when it is not one.</summary>
    private static string? TotpSecret(string text)
    {
        var compact = text.Replace(" ", "", StringComparison.Ordinal).TrimEnd('=').ToUpperInvariant();
        if (compact.Length is < 16 or > 103 || !compact.All(c => c is >= 'A' and <= 'Z' or >= '2' and <= '7'))
        {
            return null;
        }

        var key = OtpNet.Base32Encoding.ToBytes(compact);
        return key.Length is >= 10 and <= 64 ? OtpNet.Base32Encoding.ToString(key) : null;
    }
}
