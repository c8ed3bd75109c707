namespace IdentityService.Users;

public static class Roles
{
    /// <summary>A tenant's administrators: with the <c>manage</c> scope, they manage their own tenant.</summary>
    public const string Admin = "admin";
}
