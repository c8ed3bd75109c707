using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace IdentityService.Data;

/// <summary>
/// How the service completes a PostgreSQL connection string, for the requests' contexts and for the few uses that need
/// a session of their own.
/// <para>
/// Requests go through Npgsql's multiplexing: their commands are written, together with other requests' commands,
/// to a few physical connections, and each answer is routed back to its command. Concurrent requests then share the
/// sends, receives and wake-ups of a connection instead of each making its own round trip on a connection it holds
/// for the whole command: measured on refreshes (<c>AB_POSTGRES=1 bench/ab.sh</c>), 16 to 24% more refreshes per CPU-second
/// of the service. A transaction still takes a connection of its own while it lasts.
/// </para>
/// <para>
/// Multiplexing refuses synchronous I/O and keeps no session state between commands. So what needs either goes through a
/// plain connection (<see cref="ForSessions"/>): the start-up (the advisory lock held across statements, EF Core's
/// migrations, which read their history synchronously) and ASP.NET Core Data Protection's key store, whose
/// <c>IXmlRepository</c> is synchronous (<see cref="PostgresKeysDb"/>).
/// </para>
/// </summary>
internal static class PostgresConnections
{
    /// <summary>The number of statements Npgsql keeps prepared per connection, unless the connection string says.</summary>
    internal const int AutoPrepared = 64;

    /// <summary>
    /// The requests' connection string: multiplexed, and with Npgsql preparing the statements a connection runs often
    /// (its "Max Auto Prepare"), so PostgreSQL parses and plans each of the hot queries (token lookups, redemptions,
    /// users) once per connection instead of on every execution. A setting in the connection string wins: "Max Auto
    /// Prepare=0" keeps statements unprepared (for example behind a connection pooler in transaction mode that cannot
    /// keep prepared statements), "Multiplexing=false" gives each command a connection of its own.
    /// </summary>
    internal static string ForRequests(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!Says(connectionString, "MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = AutoPrepared;
        }

        if (!Says(connectionString, "Multiplexing"))
        {
            builder.Multiplexing = true;
        }

        return builder.ConnectionString;
    }

    /// <summary>The connection string for what needs a session: the requests' one, never multiplexed.</summary>
    internal static string ForSessions(string connectionString) =>
        new NpgsqlConnectionStringBuilder(ForRequests(connectionString)) { Multiplexing = false }.ConnectionString;

    /// <summary>A context on a plain connection (<see cref="ForSessions"/>), bound to <paramref name="services"/>' tenant, for the start-up.</summary>
    internal static PostgreSqlIdentityDb SessionContext(IServiceProvider services)
    {
        var options = DatabaseSetup.Configure(new DbContextOptionsBuilder<PostgreSqlIdentityDb>(), DatabaseProvider.PostgreSql,
            services.GetRequiredService<PostgresSessionConnection>().ConnectionString).Options;
        var db = new PostgreSqlIdentityDb(options);
        db.BindTo(services.GetRequiredService<Tenancy.TenantContext>());
        return db;
    }

    // Whether the connection string sets the keyword, however it is spelled ("Max Auto Prepare", "maxautoprepare").
    private static bool Says(string connectionString, string keyword)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        return given.Keys.Cast<string>().Any(key => key.Replace(" ", "", StringComparison.Ordinal).Equals(keyword, StringComparison.OrdinalIgnoreCase));
    }
}

/// <summary>The PostgreSQL connection string for what needs a session (<see cref="PostgresConnections.ForSessions"/>).</summary>
internal sealed record PostgresSessionConnection(string ConnectionString);

/// <summary>
/// Data Protection's key ring on PostgreSQL: the <c>DataProtectionKeys</c> table of <see cref="IdentityDb"/> (created by
/// its migrations), read and written through a plain connection, because the key store's calls are synchronous and the
/// requests' connections are multiplexed (<see cref="PostgresConnections"/>).
/// </summary>
internal sealed class PostgresKeysDb(DbContextOptions<PostgresKeysDb> options) : DbContext(options), IDataProtectionKeyContext
{
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();
}
