using IdentityService.Data;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Management;

/// <summary>The roles a user is given through the users API and the import: names the tenant lacks become roles.</summary>
internal static partial class UsersApi
{
    /// <summary>
    /// Makes the roles named that the tenant lacks. A role made meanwhile by another request naming it is as good:
    /// users created at once with the same new role all get it.
    /// </summary>
    private static async Task<IdentityResult> EnsureRolesAsync(IdentityDb db, RoleManager<AppRole> roles, List<string>? wanted)
    {
        foreach (var name in wanted?.Distinct(StringComparer.OrdinalIgnoreCase) ?? [])
        {
            if (await roles.RoleExistsAsync(name))
            {
                continue;
            }

            var role = new AppRole { Id = Guid.NewGuid(), Name = name };
            IdentityResult created;
            try
            {
                created = await roles.CreateAsync(role);
            }
            catch (DbUpdateException)
            {
                // The unique index refused it: not left for the next save to try again.
                db.Entry(role).State = EntityState.Detached;
                created = IdentityResult.Failed(new IdentityErrorDescriber().ConcurrencyFailure());
            }

            // Refused as a duplicate name (or by the index): another request made it meanwhile.
            if (!created.Succeeded && !await roles.RoleExistsAsync(name))
            {
                return created;
            }
        }

        return IdentityResult.Success;
    }

    /// <summary>Gives the user exactly the roles named (none changed when null), making those the tenant lacks.</summary>
    private static async Task<IdentityResult> SetRolesAsync(IdentityDb db, UserManager<AppUser> users, RoleManager<AppRole> roles, AppUser user, List<string>? wanted)
    {
        if (wanted is null)
        {
            return IdentityResult.Success;
        }

        if (await EnsureRolesAsync(db, roles, wanted) is { Succeeded: false } made)
        {
            return made;
        }

        // Role names compare without case, as Identity compares them: a role the user has, named in another case, stays.
        var current = await users.GetRolesAsync(user);
        var added = wanted.Distinct(StringComparer.OrdinalIgnoreCase).Except(current, StringComparer.OrdinalIgnoreCase).ToList();
        var removed = await users.RemoveFromRolesAsync(user, current.Except(wanted, StringComparer.OrdinalIgnoreCase));
        return removed.Succeeded ? await users.AddToRolesAsync(user, added) : removed;
    }
}
