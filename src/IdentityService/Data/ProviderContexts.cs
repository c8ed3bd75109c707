using System.Collections.Concurrent;
using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace IdentityService.Data;

// One context type per database provider, each with its own migrations folder.

public sealed class SqliteIdentityDb(DbContextOptions<SqliteIdentityDb> options) : IdentityDb(options)
{
    // SQLite takes one writer at a time, and Microsoft.Data.Sqlite answers a busy database by blocking the thread
    // 150 ms before each retry: under concurrent writes that is most of a request's time and starves the thread
    // pool. So this process's writes through SaveChanges take turns on an async gate per database file (a write
    // inside an explicit transaction already holds SQLite's lock and does not wait here, so nothing deadlocks);
    // other writers (another process, bulk updates) still meet SQLite's own busy handler (SqliteBusyTimeout).
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Writers = new(StringComparer.Ordinal);

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        if (Database.CurrentTransaction is not null)
        {
            return base.SaveChanges(acceptAllChangesOnSuccess);
        }

        var writer = Writer();
        writer.Wait();
        try
        {
            return base.SaveChanges(acceptAllChangesOnSuccess);
        }
        finally
        {
            writer.Release();
        }
    }

    public override Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default) =>
        InTurnAsync(token => base.SaveChangesAsync(acceptAllChangesOnSuccess, token), cancellationToken);

    internal override async Task<int> InTurnAsync(Func<CancellationToken, Task<int>> write, CancellationToken cancellationToken)
    {
        if (Database.CurrentTransaction is not null)
        {
            return await write(cancellationToken);
        }

        var writer = Writer();
        await writer.WaitAsync(cancellationToken);
        try
        {
            return await write(cancellationToken);
        }
        finally
        {
            writer.Release();
        }
    }

    private SemaphoreSlim Writer() => Writers.GetOrAdd(Database.GetConnectionString() ?? "", _ => new SemaphoreSlim(1, 1));

    /// <summary>SQLite has no date type: times are stored as orderable 64-bit numbers, so queries can compare them.</summary>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        base.ConfigureConventions(configurationBuilder);
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<DateTimeOffsetToBinaryConverter>();
    }
}

public sealed class PostgreSqlIdentityDb(DbContextOptions<PostgreSqlIdentityDb> options) : IdentityDb(options);

public sealed class SqlServerIdentityDb(DbContextOptions<SqlServerIdentityDb> options) : IdentityDb(options);

// Design-time factories for `dotnet ef migrations add`; they need no server.

internal sealed class SqliteDesignFactory : IDesignTimeDbContextFactory<SqliteIdentityDb>
{
    public SqliteIdentityDb CreateDbContext(string[] args) =>
        new(DatabaseSetup.Configure(new DbContextOptionsBuilder<SqliteIdentityDb>(), DatabaseProvider.Sqlite, "Data Source=design.db").Options);
}

internal sealed class PostgreSqlDesignFactory : IDesignTimeDbContextFactory<PostgreSqlIdentityDb>
{
    public PostgreSqlIdentityDb CreateDbContext(string[] args) =>
        new(DatabaseSetup.Configure(new DbContextOptionsBuilder<PostgreSqlIdentityDb>(), DatabaseProvider.PostgreSql, "Host=localhost;Database=design").Options);
}

internal sealed class SqlServerDesignFactory : IDesignTimeDbContextFactory<SqlServerIdentityDb>
{
    public SqlServerIdentityDb CreateDbContext(string[] args) =>
        new(DatabaseSetup.Configure(new DbContextOptionsBuilder<SqlServerIdentityDb>(), DatabaseProvider.SqlServer, "Server=localhost;Database=design;TrustServerCertificate=true").Options);
}

/// <summary>
/// Lets SQLite itself wait for a busy database (its busy handler sleeps 1, 2, 5... ms between tries, up to 5 s)
/// instead of Microsoft.Data.Sqlite's 150 ms thread-blocking retries; and keeps each pooled connection's page
/// cache at 256 KiB (SQLite's default is 2 MiB per connection, and the operating system caches the file anyway):
/// under 16 concurrent requests that is ~12 MiB less resident memory for no measurable CPU.
/// </summary>
internal sealed class SqliteBusyTimeout : DbConnectionInterceptor
{
    public static readonly SqliteBusyTimeout Instance = new();

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Apply(connection);
        return Task.CompletedTask;
    }

    // The settings belong to the native connection, which Microsoft.Data.Sqlite's pool hands out again and
    // again: they are applied once per native connection, not on every open.
    private static readonly ConditionalWeakTable<object, object> Applied = new();

    private static void Apply(DbConnection connection)
    {
        var handle = (connection as Microsoft.Data.Sqlite.SqliteConnection)?.Handle;
        if (handle is not null && Applied.TryGetValue(handle, out _))
        {
            return;
        }

        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA busy_timeout = 5000; PRAGMA cache_size = -256;";
        command.ExecuteNonQuery();
        if (handle is not null)
        {
            Applied.AddOrUpdate(handle, handle);
        }
    }
}

/// <summary>
/// EF Core's SQLite connection without the SQL functions the provider adds to every connection (<c>regexp</c> and
/// the <c>ef_*</c> decimal arithmetic and comparison, and the <c>EF_DECIMAL</c> collation), which queries need only
/// when they match a regular expression or compute on <c>decimal</c> columns; this model has neither. Microsoft.Data.Sqlite
/// registers a connection's functions with SQLite on every open and removes them when it goes back to the pool:
/// in a perf profile of the benchmark's refreshes (one user read each) that was 2.5% of the samples (0.4% after),
/// and 3.5% of the bytes a refresh allocated. A query that needed one of them would fail with "no such function".
/// </summary>
#pragma warning disable EF1001 // SqliteRelationalConnection is EF Core's internal service; only its connection factory is replaced.
internal sealed class SqliteConnectionWithoutFunctions(
    RelationalConnectionDependencies dependencies,
    IRawSqlCommandBuilder rawSqlCommandBuilder,
    IDiagnosticsLogger<DbLoggerCategory.Infrastructure> logger)
    : Microsoft.EntityFrameworkCore.Sqlite.Storage.Internal.SqliteRelationalConnection(dependencies, rawSqlCommandBuilder, logger)
{
    public static DbContextOptionsBuilder Use(DbContextOptionsBuilder builder) =>
        builder.ReplaceService<Microsoft.EntityFrameworkCore.Sqlite.Storage.Internal.ISqliteRelationalConnection, SqliteConnectionWithoutFunctions>();

    protected override DbConnection CreateDbConnection() => new Microsoft.Data.Sqlite.SqliteConnection(GetValidatedConnectionString());
}
#pragma warning restore EF1001
