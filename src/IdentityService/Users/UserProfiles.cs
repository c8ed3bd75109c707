using System.Linq.Expressions;
using IdentityService.Data;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Users;

/// <summary>
/// The part of a user that tokens and the userinfo answer are made of: the id, the profile, email and phone. A type of
/// its own, not a partly filled <see cref="AppUser"/>, so it cannot reach <c>UserManager</c>'s updates.
/// </summary>
public sealed class UserProfile
{
    public Guid Id { get; init; }

    public string TenantId { get; init; } = "";

    public string? Name { get; init; }

    public string? GivenName { get; init; }

    public string? FamilyName { get; init; }

    public string? Locale { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? UpdatedAt { get; init; }

    public string? Email { get; init; }

    public bool EmailConfirmed { get; init; }

    public string? PhoneNumber { get; init; }

    public bool PhoneNumberConfirmed { get; init; }

    /// <summary>
    /// The profile's columns, as one projection: what <see cref="UserProfiles"/> reads (translated to SQL) and what
    /// <see cref="Of"/> takes from a user already read whole.
    /// </summary>
    internal static readonly Expression<Func<AppUser, UserProfile>> FromUser = u => new UserProfile
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
    };

    private static readonly Func<AppUser, UserProfile> OfUser = FromUser.Compile();

    /// <summary>The profile of a user already read whole (at a sign-in).</summary>
    public static UserProfile Of(AppUser user) => OfUser(user);
}

/// <summary>
/// Reads a user's <see cref="UserProfile"/>: those columns only, untracked. The token endpoint (every code exchange
/// and refresh) and the userinfo endpoint read a user only to build claims; the whole tracked entity (password hash,
/// security stamp, lockout and two-factor columns, a change-tracking snapshot) was the largest piece of a refresh
/// after the signatures in a perf profile, and an <see cref="AppUser"/> made even for a projection draws a new
/// concurrency stamp (a random GUID) that nothing here reads.
/// </summary>
internal static class UserProfiles
{
    private static readonly Func<IdentityDb, Guid, CancellationToken, Task<UserProfile?>> ById = EF.CompileAsyncQuery(
        (IdentityDb db, Guid id, CancellationToken _) => db.Users.AsNoTracking()
            .Where(u => u.Id == id)
            .Select(UserProfile.FromUser)
            .FirstOrDefault());

    /// <summary>The profile of the current tenant's user with this subject (a user id), or null when there is none.</summary>
    public static Task<UserProfile?> FindAsync(IdentityDb db, string? subject, CancellationToken cancellationToken) =>
        Guid.TryParse(subject, out var id) ? ById(db, id, cancellationToken) : Task.FromResult<UserProfile?>(null);
}
