using IdentityService.Oidc;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Data;

/// <summary>Registers the database: the provider's context as <see cref="IdentityDb"/>, with OpenIddict's entities.</summary>
public static class DatabaseSetup
{
    public static IServiceCollection AddData(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<Pruning>();
        services.AddHostedService(sp => sp.GetRequiredService<Pruning>());

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
                AddPooled<SqliteIdentityDb>(services, b => Configure(b, options.Provider, connectionString));
                break;
            case DatabaseProvider.PostgreSql:
                AddPooled<PostgreSqlIdentityDb>(services, b => Configure(b, options.Provider, PostgresConnections.ForRequests(connectionString)));
                var session = PostgresConnections.ForSessions(connectionString);
                services.AddSingleton(new PostgresSessionConnection(session));
                services.AddDbContext<PostgresKeysDb>(b => b.UseNpgsql(session));
                break;
            case DatabaseProvider.SqlServer:
                AddPooled<SqlServerIdentityDb>(services, b => Configure(b, options.Provider, connectionString));
                break;
            default:
                throw new InvalidOperationException($"Database:Provider '{options.Provider}' is not one of Sqlite, PostgreSql, SqlServer.");
        }

        return services;
    }

    /// <summary>
    /// Keeps the Data Protection key ring in the database's <c>DataProtectionKeys</c> table, so every replica reads the
    /// same keys: through <see cref="PostgresKeysDb"/> on PostgreSQL (a plain connection, the key store being
    /// synchronous), through <see cref="IdentityDb"/> elsewhere.
    /// </summary>
    public static IDataProtectionBuilder PersistKeysToDatabase(this IDataProtectionBuilder builder, IConfiguration configuration)
    {
        var options = configuration.GetSection(DatabaseOptions.Section).Get<DatabaseOptions>() ?? new DatabaseOptions();
        return options.Provider == DatabaseProvider.PostgreSql
            ? builder.PersistKeysToDbContext<PostgresKeysDb>()
            : builder.PersistKeysToDbContext<IdentityDb>();
    }

    /// <summary>
    /// Contexts come from a pool (building one is a large part of a short request's cost): each scope leases one as
    /// <see cref="IdentityDb"/>, bound to the scope's tenant, and returns it, unbound, when the scope ends.
    /// </summary>
    private static void AddPooled<T>(IServiceCollection services, Action<DbContextOptionsBuilder> configure)
        where T : IdentityDb
    {
        services.AddPooledDbContextFactory<T>(configure);
        services.AddScoped<IdentityDb>(provider =>
        {
            var db = provider.GetRequiredService<IDbContextFactory<T>>().CreateDbContext();
            db.BindTo(provider.GetRequiredService<Tenancy.TenantContext>());
            return db;
        });
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
            DatabaseProvider.Sqlite => SqliteConnectionWithoutFunctions.Use(builder.UseSqlite(connectionString).AddInterceptors(SqliteBusyTimeout.Instance)),
            DatabaseProvider.PostgreSql => builder.UseNpgsql(connectionString),
            DatabaseProvider.SqlServer => builder.UseSqlServer(connectionString),
            _ => throw new InvalidOperationException($"Unknown database provider {provider}."),
        };
        builder.UseOpenIddict<TenantApplication, TenantAuthorization, TenantScope, TenantToken, Guid>();
    }
}
