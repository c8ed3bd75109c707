using IdentityService.Oidc;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Data;

/// <summary>Registers the database: the provider's context as <see cref="IdentityDb"/>, with OpenIddict's entities.</summary>
public static class DatabaseSetup
{
    public static IServiceCollection AddData(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        var options = configuration.GetSection(DatabaseOptions.Section).Get<DatabaseOptions>() ?? new DatabaseOptions();
        var connectionString = configuration.GetConnectionString("Identity");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            if (options.Provider != DatabaseProvider.Sqlite)
            {
                throw new InvalidOperationException($"ConnectionStrings:Identity is required when Database:Provider is {options.Provider}.");
            }

            Directory.CreateDirectory(options.DataDirectory);
            connectionString = $"Data Source={Path.Combine(options.DataDirectory, "identity.db")}";
        }

        switch (options.Provider)
        {
            case DatabaseProvider.Sqlite:
                services.AddDbContext<IdentityDb, SqliteIdentityDb>(b => Configure(b, options.Provider, connectionString));
                break;
            case DatabaseProvider.PostgreSql:
                services.AddDbContext<IdentityDb, PostgreSqlIdentityDb>(b => Configure(b, options.Provider, connectionString));
                break;
            case DatabaseProvider.SqlServer:
                services.AddDbContext<IdentityDb, SqlServerIdentityDb>(b => Configure(b, options.Provider, connectionString));
                break;
            default:
                throw new InvalidOperationException($"Database:Provider '{options.Provider}' is not one of Sqlite, PostgreSql, SqlServer.");
        }

        return services;
    }

    internal static DbContextOptionsBuilder<T> Configure<T>(DbContextOptionsBuilder<T> builder, DatabaseProvider provider, string connectionString)
        where T : DbContext
    {
        Configure((DbContextOptionsBuilder)builder, provider, connectionString);
        return builder;
    }

    internal static void Configure(DbContextOptionsBuilder builder, DatabaseProvider provider, string connectionString)
    {
        _ = provider switch
        {
            DatabaseProvider.Sqlite => builder.UseSqlite(connectionString).AddInterceptors(SqliteBusyTimeout.Instance),
            DatabaseProvider.PostgreSql => builder.UseNpgsql(connectionString),
            DatabaseProvider.SqlServer => builder.UseSqlServer(connectionString),
            _ => throw new InvalidOperationException($"Unknown database provider {provider}."),
        };
        builder.UseOpenIddict<TenantApplication, TenantAuthorization, TenantScope, TenantToken, Guid>();
    }
}
