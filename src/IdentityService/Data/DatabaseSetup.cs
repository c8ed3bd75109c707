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
                AddPooled<SqliteIdentityDb>(services, b => Configure(b, options.Provider, connectionString));
                break;
            case DatabaseProvider.PostgreSql:
                AddPooled<PostgreSqlIdentityDb>(services, b => Configure(b, options.Provider, connectionString));
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
            DatabaseProvider.PostgreSql => builder.UseNpgsql(WithAutoPrepare(connectionString)),
            DatabaseProvider.SqlServer => builder.UseSqlServer(connectionString),
            _ => throw new InvalidOperationException($"Unknown database provider {provider}."),
        };
        builder.UseOpenIddict<TenantApplication, TenantAuthorization, TenantScope, TenantToken, Guid>();
    }

    /// <summary>The number of statements Npgsql keeps prepared per connection, unless the connection string says.</summary>
    internal const int AutoPrepared = 64;

    /// <summary>
    /// Lets Npgsql prepare the statements a connection runs often (its "Max Auto Prepare"), so PostgreSQL parses
    /// and plans each of the hot queries (token lookups, redemptions, users) once per connection instead of on
    /// every execution. A setting in the connection string wins: 0 turns it off, for example behind a connection
    /// pooler in transaction mode that cannot keep prepared statements.
    /// </summary>
    internal static string WithAutoPrepare(string connectionString)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        if (given.Keys.Cast<string>().Any(key => key.Replace(" ", "", StringComparison.Ordinal).Equals("MaxAutoPrepare", StringComparison.OrdinalIgnoreCase)))
        {
            return connectionString;
        }

        return new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { MaxAutoPrepare = AutoPrepared }.ConnectionString;
    }
}
