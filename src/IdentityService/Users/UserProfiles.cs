using IdentityService.Data;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Users;

/// <summary>
/// Reads the part of a user that tokens and the userinfo answer are made of: the profile, email and phone
/// columns and the id, untracked. The token endpoint (every code exchange and refresh) and the userinfo
/// endpoint read a user only to build claims; the whole tracked entity (password hash, security stamp,
/// lockout and two-factor columns, a change-tracking snapshot) was the largest piece of a refresh after the
/// signatures in a perf profile.
/// </summary>
/// <remarks>
/// What it returns is a read-only view: the columns not read are left at their defaults (no password hash, a
/// concurrency stamp of its own). It must never reach <c>UserManager</c>'s updates; reading through it (for
/// example a user's roles, which need only the id) is fine.
/// </remarks>
internal static class UserProfiles
{
    private static readonly Func<IdentityDb, Guid, CancellationToken, Task<AppUser?>> ById = EF.CompileAsyncQuery(
        (IdentityDb db, Guid id, CancellationToken _) => db.Users.AsNoTracking()
            .Where(u => u.Id == id)
            .Select(u => new AppUser
            {
                Id = u.Id,
                TenantId = u.TenantId,
                Name = u.Name,
                GivenName = u.GivenName,
                FamilyName = u.FamilyName,
                Locale = u.Locale,
                CreatedAt = u.CreatedAt,
                UpdatedAt = u.UpdatedAt,
                Email = u.Email,
                EmailConfirmed = u.EmailConfirmed,
                PhoneNumber = u.PhoneNumber,
                PhoneNumberConfirmed = u.PhoneNumberConfirmed,
            })
            .FirstOrDefault());

    /// <summary>The user of the current tenant with this subject (a user id), or null when there is none.</summary>
    public static Task<AppUser?> FindAsync(IdentityDb db, string? subject, CancellationToken cancellationToken) =>
        Guid.TryParse(subject, out var id) ? ById(db, id, cancellationToken) : Task.FromResult<AppUser?>(null);
}
