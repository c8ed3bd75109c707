using IdentityService.Data;
using IdentityService.SignIn;
using Microsoft.AspNetCore.Identity;

namespace IdentityService.Users;

public static class UsersSetup
{
    /// <summary>ASP.NET Core Identity's user store and hasher. Its own lockout is off: it reads the wall clock.</summary>
    public static IServiceCollection AddUsers(this IServiceCollection services)
    {
        services.AddIdentityCore<AppUser>(options =>
            {
                options.User.RequireUniqueEmail = true;
                options.User.AllowedUserNameCharacters = "";
                options.Lockout.AllowedForNewUsers = false;
                options.Password.RequiredLength = 8;
                options.Password.RequireNonAlphanumeric = false;
                options.Password.RequireUppercase = false;
                options.Password.RequireLowercase = false;
                options.Password.RequireDigit = false;
            })
            .AddRoles<AppRole>()
            .AddEntityFrameworkStores<IdentityDb>()
            .AddUserStore<TenantUserStore>();
        services.AddScoped<PasswordSignIn>();
        return services;
    }
}
