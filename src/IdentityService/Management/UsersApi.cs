using System.Net.Mail;
using System.Text.RegularExpressions;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Management;

/// <summary><c>/api/v1/tenants/{tenant}/users</c>: the tenant's users, addressed by id. Password hashes never leave.</summary>
internal static partial class UsersApi
{
    /// <summary>A user's fields as the API sets them (all optional: absent fields keep their value).</summary>
    public class UserFields
    {
        public string? Email { get; set; }

        public bool? EmailVerified { get; set; }

        public string? PhoneNumber { get; set; }

        public bool? PhoneNumberVerified { get; set; }

        public string? Name { get; set; }

        public string? GivenName { get; set; }

        public string? FamilyName { get; set; }

        public string? Locale { get; set; }

        public List<string>? Roles { get; set; }

        public bool? Disabled { get; set; }
    }

    public sealed class UserBody : UserFields
    {
        public string? Password { get; set; }
    }

    public sealed record UserView(
        Guid Id, string? Email, bool EmailVerified, string? PhoneNumber, bool PhoneNumberVerified, bool MfaEnrolled,
        string? Name, string? GivenName, string? FamilyName, string? Locale, IReadOnlyList<string> Roles,
        bool Disabled, string? AcceptedTermsUrl, DateTimeOffset? TermsAcceptedAt, DateTimeOffset CreatedAt, DateTimeOffset? UpdatedAt);

    [GeneratedRegex(@"^\+[1-9][0-9]{6,14}$")]
    private static partial Regex E164();

    public static RouteGroupBuilder MapUsers(this RouteGroupBuilder api)
    {
        var users = api.MapGroup("/tenants/{tenant}/users").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        users.MapPost("", CreateAsync);
        users.MapPost("/import", ImportAsync);
        users.MapGet("", ListAsync);
        users.MapGet("/{userId}", GetAsync);
        users.MapPatch("/{userId}", UpdateAsync);
        users.MapDelete("/{userId}", DeleteAsync);
        return api;
    }

    private static async Task<IResult> CreateAsync(
        HttpContext http, UserManager<AppUser> users, RoleManager<AppRole> roles, IdentityDb db, TenantContext tenantContext, Policy.PolicyStore policies, TimeProvider time,
        AuditLog audit)
    {
        var body = await JsonBody.ReadAsync<UserBody>(http.Request);
        if (body.Error is not null)
        {
            return body.Error;
        }

        var request = body.Value!;
        var errors = new Dictionary<string, string[]>();
        if (request.Email is null)
        {
            errors["email"] = ["email is required."];
        }

        if (string.IsNullOrEmpty(request.Password))
        {
            errors["password"] = ["password is required."];
        }

        var user = new AppUser { Id = Guid.NewGuid(), CreatedAt = time.GetUtcNow() };
        Apply(user, request, errors);
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        var rules = (await policies.GetAsync(tenantContext.Required, http.RequestAborted)).Passwords;
        var passwordErrors = await UserSecurity.CheckPasswordAsync(users, user, request.Password!, rules, tenantContext.Required);
        if (passwordErrors.Count > 0)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["password"] = passwordErrors.ToArray() });
        }

        if (await users.FindByEmailAsync(user.Email!) is not null)
        {
            return Problems.Conflict("user_exists", "A user with this email exists in this tenant.");
        }

        // The roles first: a user is never left made without the roles the answer refused.
        if (await EnsureRolesAsync(db, roles, request.Roles) is { Succeeded: false } made)
        {
            return IdentityProblem(made);
        }

        IdentityResult result;
        try
        {
            result = await users.CreateAsync(user, request.Password!);
        }
        catch (DbUpdateException)
        {
            return Problems.Conflict("user_exists", "A user with this email exists in this tenant.");
        }

        if (!result.Succeeded)
        {
            return IdentityProblem(result);
        }

        if (await SetRolesAsync(db, users, roles, user, request.Roles) is { Succeeded: false } rolesResult)
        {
            return IdentityProblem(rolesResult);
        }

        await audit.AdminActionAsync(http, AuditEventTypes.UserCreated, userId: user.Id, details: new { fields = AuditLog.FieldsSet(request) });
        return Results.Created($"/api/v1/tenants/{tenantContext.Required.Id}/users/{user.Id}", await ViewAsync(users, user));
    }

    private static async Task<IResult> ListAsync(HttpContext http, IdentityDb db, UserManager<AppUser> users)
    {
        var (limit, after, error) = Paging.Read(http.Request);
        if (error is not null)
        {
            return error;
        }

        var query = db.Users.AsNoTracking();
        if (http.Request.Query.TryGetValue("email", out var email) && !string.IsNullOrEmpty(email))
        {
            var normalized = users.NormalizeEmail(email.ToString());
            query = query.Where(u => u.NormalizedEmail == normalized);
        }

        if (http.Request.Query.TryGetValue("disabled", out var disabled) && disabled.Count > 0)
        {
            if (disabled.ToString() is not ("true" or "false"))
            {
                return Problems.Validation("disabled", "disabled must be true or false.");
            }

            var wanted = disabled.ToString() == "true";
            query = query.Where(u => u.Disabled == wanted);
        }

        if (after is not null)
        {
            if (!Guid.TryParse(after, out var afterId))
            {
                return Problems.Validation("cursor", "cursor is not one this API gave.");
            }

            query = query.Where(u => u.Id.CompareTo(afterId) > 0);
        }

        var rows = await query.OrderBy(u => u.Id).Take(limit + 1).ToListAsync(http.RequestAborted);
        var views = new List<UserView>();
        foreach (var row in rows)
        {
            views.Add(await ViewAsync(users, row));
        }

        return Results.Ok(Paging.Create(Enumerable.Range(0, rows.Count).ToList(), limit, i => rows[i].Id.ToString(), i => views[i]));
    }

    private static async Task<IResult> GetAsync(string userId, UserManager<AppUser> users)
    {
        var user = await FindAsync(users, userId);
        return user is null ? UserNotFound() : Results.Ok(await ViewAsync(users, user));
    }

    private static async Task<IResult> UpdateAsync(
        HttpContext http, string userId, UserManager<AppUser> users, RoleManager<AppRole> roles, IdentityDb db, TenantContext tenantContext, Policy.PolicyStore policies,
        TimeProvider time, AuditLog audit, AccountSessions sessions)
    {
        var body = await JsonBody.ReadAsync<UserBody>(http.Request, "application/json", "application/merge-patch+json");
        if (body.Error is not null)
        {
            return body.Error;
        }

        var user = await FindAsync(users, userId);
        if (user is null)
        {
            return UserNotFound();
        }

        var request = body.Value!;
        var errors = new Dictionary<string, string[]>();
        var previousEmail = user.NormalizedEmail;
        var wasDisabled = user.Disabled;
        Apply(user, request, errors);
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        if (request.Password is not null)
        {
            var rules = (await policies.GetAsync(tenantContext.Required, http.RequestAborted)).Passwords;
            var passwordErrors = await UserSecurity.CheckPasswordAsync(users, user, request.Password, rules, tenantContext.Required);
            if (passwordErrors.Count > 0)
            {
                return Problems.Validation(new Dictionary<string, string[]> { ["password"] = passwordErrors.ToArray() });
            }

            user.PasswordHash = users.PasswordHasher.HashPassword(user, request.Password);
        }

        if (users.NormalizeEmail(user.Email) != previousEmail && await users.FindByEmailAsync(user.Email!) is { } other && other.Id != user.Id)
        {
            return Problems.Conflict("user_exists", "A user with this email exists in this tenant.");
        }

        user.UpdatedAt = time.GetUtcNow();
        var result = await users.UpdateAsync(user);
        if (!result.Succeeded)
        {
            return IdentityProblem(result);
        }

        if (request.Disabled == true && !wasDisabled)
        {
            // Every way in ends: sessions, grants, reset links, challenges (a new password's ending included).
            await sessions.EndAllAsync(user, CancellationToken.None);
        }
        else if (request.Password is not null)
        {
            // A new password ends what the old one began: sessions, grants (refresh tokens, and the access tokens of
            // those sign-ins), sign-ins at their second step, and reset links asked for before.
            await sessions.EndAllAsync(user, CancellationToken.None);
        }
        else if (user.NormalizedEmail != previousEmail)
        {
            // Reset links were mailed to the old address: whoever reads it must not set the password from now on.
            await db.InTurnAsync(c => db.Set<PasswordResetToken>().Where(t => t.UserId == user.Id).ExecuteDeleteAsync(c), CancellationToken.None);
        }

        if (await SetRolesAsync(db, users, roles, user, request.Roles) is { Succeeded: false } rolesResult)
        {
            return IdentityProblem(rolesResult);
        }

        await audit.AdminActionAsync(http, AuditEventTypes.UserUpdated, userId: user.Id, details: new { fields = AuditLog.FieldsSet(request) });
        return Results.Ok(await ViewAsync(users, user));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, string userId, UserManager<AppUser> users, UserErasure erasure, AuditLog audit)
    {
        var user = await FindAsync(users, userId);
        if (user is null)
        {
            return UserNotFound();
        }

        var result = await erasure.EraseAsync(user);
        if (!result.Succeeded)
        {
            return IdentityProblem(result);
        }

        await audit.AdminActionAsync(http, AuditEventTypes.UserDeleted, userId: user.Id);
        return Results.NoContent();
    }

    private static void Apply(AppUser user, UserFields request, Dictionary<string, string[]> errors)
    {
        if (request.Email is not null)
        {
            var email = request.Email.Trim();
            if (!EmailAddresses.IsAcceptable(email, out _))
            {
                errors["email"] = ["email must be a valid address."];
            }

            // A new address is not verified until someone says so: the old one's verification does not carry over.
            if (!string.Equals(user.Email, email, StringComparison.OrdinalIgnoreCase))
            {
                user.EmailConfirmed = false;
            }

            user.Email = email;
            user.UserName = email;
        }

        if (request.EmailVerified is { } verified)
        {
            user.EmailConfirmed = verified;
        }

        if (request.Disabled is { } disabled)
        {
            user.Disabled = disabled;
        }

        if (request.PhoneNumber is not null)
        {
            if (request.PhoneNumber.Length > 0 && !E164().IsMatch(request.PhoneNumber))
            {
                errors["phoneNumber"] = ["phoneNumber must be in E.164 form, for example +33612345678."];
            }

            user.PhoneNumber = request.PhoneNumber.Length == 0 ? null : request.PhoneNumber;
        }

        if (request.PhoneNumberVerified is { } phoneVerified)
        {
            user.PhoneNumberConfirmed = phoneVerified;
        }

        ProfileFields.Apply(user, request.Name, request.GivenName, request.FamilyName, request.Locale, errors);

        if (request.Roles is { } roles && roles.Any(r => string.IsNullOrWhiteSpace(r) || r.Length > 64 || r.Any(char.IsControl)))
        {
            errors["roles"] = ["Each role is 1-64 characters, none of them a control character."];
        }
        else if (request.Roles?.Distinct(StringComparer.Ordinal).GroupBy(r => r, StringComparer.OrdinalIgnoreCase).Any(g => g.Count() > 1) == true)
        {
            // ASP.NET Core Identity compares role names without case: "ops" and "OPS" are one role, named once.
            errors["roles"] = ["Each role once: role names that differ only in case are the same role."];
        }
    }

    /// <summary>Gives the user exactly the roles named (null: unchanged); a failure (a concurrent change) is answered, not dropped.</summary>
    internal static async Task<AppUser?> FindAsync(UserManager<AppUser> users, string userId) =>
        Guid.TryParse(userId, out var id) ? await users.FindByIdAsync(id.ToString()) : null;

    internal static async Task<UserView> ViewAsync(UserManager<AppUser> users, AppUser u) => new(
        u.Id, u.Email, u.EmailConfirmed, u.PhoneNumber, u.PhoneNumberConfirmed, u.TwoFactorEnabled, u.Name, u.GivenName, u.FamilyName, u.Locale,
        (await users.GetRolesAsync(u)).ToList(), u.Disabled, u.AcceptedTermsUrl, u.TermsAcceptedAt, u.CreatedAt, u.UpdatedAt);

    private static IResult IdentityProblem(IdentityResult result)
    {
        if (result.Errors.Any(e => e.Code == nameof(IdentityErrorDescriber.ConcurrencyFailure)))
        {
            return Problems.Conflict("concurrent_change", "The user was changed by another request meanwhile: read it again and retry.");
        }

        if (result.Errors.Any(e => e.Code is "DuplicateEmail" or "DuplicateUserName"))
        {
            return Problems.Conflict("user_exists", "A user with this email exists in this tenant.");
        }

        return Problems.Validation(new Dictionary<string, string[]> { ["user"] = result.Errors.Select(e => e.Description).ToArray() });
    }

    internal static IResult UserNotFound() => Problems.NotFound("user_not_found", "No user has this id in this tenant.");
}
