using IdentityService.Data;
using IdentityService.SignIn;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace IdentityService.Users;

public static class UsersSetup
{
    /// <summary>ASP.NET Core Identity's user store and hasher. Its own lockout is off: it reads the wall clock.</summary>
    public static IServiceCollection AddUsers(this IServiceCollection services)
    {
        services.AddOptions<PasswordHashingOptions>().BindConfiguration(PasswordHashingOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<PasswordHasherOptions>().Configure<IOptions<PasswordHashingOptions>>(
            (hasher, hashing) => hasher.IterationCount = hashing.Value.HashIterations);
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
            .AddUserStore<TenantUserStore>()
            .AddPasswordValidator<BreachedPasswordValidator>();
        services.AddOptions<BreachedPasswordsOptions>().BindConfiguration(BreachedPasswordsOptions.Section);
        services.AddHttpClient<PwnedPasswordsClient>(client => client.DefaultRequestHeaders.UserAgent.ParseAdd("IdentityService"));
        services.Replace(ServiceDescriptor.Scoped<IPasswordHasher<AppUser>, ImportedPasswordHasher>());
        services.AddSingleton<DummyPasswordHash>();
        services.AddScoped<PasswordSignIn>();
        services.AddScoped<PasswordResets>();
        services.AddScoped<SignUps>();
        services.AddScoped<PasswordChanges>();
        services.AddScoped<AccountSessions>();
        services.AddScoped<UserErasure>();
        services.AddScoped<ConnectedApps>();
        services.AddScoped<EmailChanges>();
        services.AddScoped<EmailVerifications>();
        services.AddOptions<Email.SmtpOptions>().BindConfiguration(Email.SmtpOptions.Section);
        services.AddSingleton<Email.Mailer>();
        services.AddHostedService(sp => sp.GetRequiredService<Email.Mailer>());
        return services;
    }
}
