using System.Text.RegularExpressions;

namespace IdentityService.Tenancy;

/// <summary>The shape of a tenant id (CONTRACT.md section 3): 2-63 characters of a-z, 0-9 and '-', starting with a letter.</summary>
public static partial class TenantIds
{
    [GeneratedRegex("^[a-z][a-z0-9-]{1,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();

    public static bool IsValid(string? id) => id is not null && Shape().IsMatch(id);
}
