using Npgsql;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// The database a test server runs on: a fresh SQLite file by default, or a fresh database on the
/// PostgreSQL server named by <c>TEST_POSTGRES</c> (a connection string whose user may create databases).
/// </summary>
public sealed class TestDatabase : IDisposable
{
    private readonly string? _directory;
    private readonly string? _postgresAdmin;
    private readonly string? _postgresName;

    private TestDatabase(string provider, string connectionString, string? directory, string? postgresAdmin, string? postgresName)
    {
        Provider = provider;
        ConnectionString = connectionString;
        _directory = directory;
        _postgresAdmin = postgresAdmin;
        _postgresName = postgresName;
    }

    public string Provider { get; }

    public string ConnectionString { get; }

    /// <summary>The PostgreSQL server's connection string when the suite runs against one.</summary>
    public static string? PostgresServer => Environment.GetEnvironmentVariable("TEST_POSTGRES") is { Length: > 0 } value ? value : null;

    /// <param name="provider">The database provider; by default PostgreSQL when <c>TEST_POSTGRES</c> is set, else SQLite.</param>
    /// <param name="createDatabase">False to leave the PostgreSQL database for the service to create (it is dropped all the same).</param>
    public static TestDatabase Create(string? provider = null, bool createDatabase = true)
    {
        provider ??= PostgresServer is null ? "Sqlite" : "PostgreSql";
        if (provider == "PostgreSql")
        {
            var admin = PostgresServer ?? throw new InvalidOperationException("TEST_POSTGRES is not set: .ci/run starts a PostgreSQL server and sets it.");
            var name = "is_test_" + Guid.NewGuid().ToString("N")[..12];
            if (createDatabase)
            {
                using var connection = new NpgsqlConnection(admin);
                connection.Open();
                using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
                command.ExecuteNonQuery();
            }

            var builder = new NpgsqlConnectionStringBuilder(admin) { Database = name };
            return new TestDatabase(provider, builder.ConnectionString, null, admin, name);
        }

        var directory = Path.Combine(Path.GetTempPath(), "identityservice-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        return new TestDatabase("Sqlite", $"Data Source={Path.Combine(directory, "identity.db")}", directory, null, null);
    }

    /// <summary>
    /// Drops the test's database. A server process of another role (autovacuum) may hold it for a moment, and the
    /// test role may not end that process: try a few times, then leave it to the throwaway server.
    /// </summary>
    private void DropPostgresDatabase()
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                using var connection = new NpgsqlConnection(_postgresAdmin);
                connection.Open();
                using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_postgresName} WITH (FORCE)", connection);
                command.ExecuteNonQuery();
                return;
            }
            catch (PostgresException)
            {
                Thread.Sleep(200 * (attempt + 1));
            }
        }
    }

    public void Dispose()
    {
        if (_postgresAdmin is not null)
        {
            NpgsqlConnection.ClearAllPools();
            DropPostgresDatabase();
        }

        if (_directory is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
