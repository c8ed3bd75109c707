using IdentityService.Data;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace IdentityService.Tests.Data;

/// <summary>
/// No SQL Server can run on these machines, so its migrations are checked without one: they must
/// describe exactly the current model, and their SQL script must generate. SQLite and PostgreSQL
/// migrations are also applied for real by every other test.
/// </summary>
public sealed class MigrationsTests
{
    public static TheoryData<string> Providers => ["Sqlite", "PostgreSql", "SqlServer"];

    [Theory]
    [MemberData(nameof(Providers))]
    public void Migrations_DescribeTheCurrentModel(string provider)
    {
        using var db = Create(provider);

        Assert.False(db.Database.HasPendingModelChanges(),
            $"The {provider} migrations differ from the model: add a migration for each provider (see README).");
    }

    [Fact]
    public void SqlServerMigrations_GenerateTheirScript()
    {
        using var db = Create("SqlServer");

        var script = db.GetService<IMigrator>().GenerateScript();

        Assert.Contains("CREATE TABLE [Tenants]", script);
        Assert.Contains("CREATE TABLE [OpenIddictTokens]", script);
        Assert.Contains("CREATE UNIQUE INDEX [UserNameIndex] ON [AspNetUsers] ([TenantId], [NormalizedUserName])", script);
    }

    /// <summary>
    /// A database made before the audit log keeps its sign-in log and policy history: the migration moves both into
    /// the audit log in the order they happened. Run on the suite's database (SQLite, or PostgreSQL in CI's second pass).
    /// </summary>
    [Fact]
    public async Task AuditLogMigration_KeepsTheSignInLogAndThePolicyHistory()
    {
        using var database = TestDatabase.Create();
        var postgres = database.Provider == "PostgreSql";
        await using var db = await MigratedToJustBeforeAsync(database, "_AuditLog");

        var t0 = new DateTimeOffset(2026, 11, 30, 8, 0, 0, TimeSpan.Zero);
        object Time(int minutes) => postgres ? t0.AddMinutes(minutes) : new DateTimeOffsetToBinaryConverter().ConvertToProvider(t0.AddMinutes(minutes))!;
        var userId = Guid.NewGuid();
        object user = postgres ? userId : userId.ToString().ToUpperInvariant();
        await db.Database.ExecuteSqlRawAsync(
            "INSERT INTO \"SignInEvents\" (\"Id\", \"TenantId\", \"Time\", \"Outcome\", \"Reason\", \"DecidedBy\", \"Identifier\", \"UserId\", \"Ip\", \"Country\", \"UserAgent\", \"ClientId\", \"Trace\") " +
            "VALUES ({0}, 'acme', {1}, 'failed', 'invalid_credentials', 'CheckPassword', 'ada@acme.test', {2}, '198.51.100.7', 'FR', 'Firefox', 'web', '[]'), " +
            "({3}, 'acme', {4}, 'succeeded', NULL, NULL, 'ada@acme.test', {2}, '198.51.100.7', NULL, NULL, NULL, '[]')",
            postgres ? Guid.NewGuid() : Guid.NewGuid().ToString(), Time(1), user, postgres ? Guid.NewGuid() : Guid.NewGuid().ToString(), Time(3));
        await db.Database.ExecuteSqlRawAsync(
            "INSERT INTO \"PolicyChanges\" (\"Id\", \"TenantId\", \"Time\", \"Actor\", \"Before\", \"After\") VALUES ({0}, 'acme', {1}, 'client:admin@system', '{{\"a\":1}}', '{{\"a\":2}}')",
            postgres ? Guid.NewGuid() : Guid.NewGuid().ToString(), Time(2));

        await db.Database.MigrateAsync();
        var entries = await db.Set<IdentityService.Audit.AuditEvent>().IgnoreQueryFilters().OrderBy(e => e.Id).ToListAsync();

        Assert.Equal(["signin.failed", "policy.changed", "signin.succeeded"], entries.Select(e => e.Type));
        Assert.Equal([t0.AddMinutes(1), t0.AddMinutes(2), t0.AddMinutes(3)], entries.Select(e => e.Time));
        Assert.All(entries, e => Assert.Equal("acme", e.TenantId));
        var failed = entries[0];
        Assert.Equal(("failed", "invalid_credentials", "CheckPassword", "ada@acme.test"), (failed.Outcome, failed.Reason, failed.DecidedBy, failed.Identifier));
        Assert.Equal((userId, "198.51.100.7", "FR", "Firefox", "web"), (failed.UserId!.Value, failed.Ip, failed.Country, failed.UserAgent, failed.ClientId));
        Assert.Equal("client:admin@system", entries[1].Actor);
        Assert.Equal("succeeded", entries[1].Outcome);
        Assert.Equal("{\"before\":{\"a\":1},\"after\":{\"a\":2}}", entries[1].Details!.Replace(" ", ""));
    }

    /// <summary>
    /// Clients made before pushed authorization requests may push theirs (stock relying parties push whenever discovery
    /// names the endpoint): the migration gives every client with the authorization endpoint the permission, and no other.
    /// </summary>
    [Fact]
    public async Task PushedAuthorizationMigration_LetsEveryClientThatSignsPeopleInPush()
    {
        using var database = TestDatabase.Create();
        var postgres = database.Provider == "PostgreSql";
        await using var db = await MigratedToJustBeforeAsync(database, "_PushedAuthorization");
        object Id() => postgres ? Guid.NewGuid() : Guid.NewGuid().ToString().ToUpperInvariant();
        object created = postgres ? DateTimeOffset.UtcNow : new DateTimeOffsetToBinaryConverter().ConvertToProvider(DateTimeOffset.UtcNow)!;
        const string Web = """["ept:token","ept:authorization","ept:end_session","gt:authorization_code","rst:code","scp:email"]""";
        const string Service = """["ept:token","ept:introspection","gt:client_credentials"]""";
        await db.Database.ExecuteSqlRawAsync(
            "INSERT INTO \"OpenIddictApplications\" (\"Id\", \"TenantId\", \"ClientId\", \"Permissions\", \"FirstParty\", \"CreatedAt\") " +
            "VALUES ({0}, 'acme', 'web', {1}, {2}, {3}), ({4}, 'acme', 'service', {5}, {2}, {3})",
            Id(), Web, true, created, Id(), Service);

        await db.Database.MigrateAsync();
        var permissions = await db.Set<IdentityService.Oidc.TenantApplication>().IgnoreQueryFilters().AsNoTracking()
            .OrderBy(a => a.ClientId).Select(a => a.Permissions).ToListAsync();

        Assert.Equal(Service, permissions[0]);
        Assert.Equal("""["ept:token","ept:authorization","ept:pushed_authorization","ept:end_session","gt:authorization_code","rst:code","scp:email"]""", permissions[1]);
    }

    /// <summary>A context on the suite's database (SQLite, or PostgreSQL in CI's second pass), migrated up to the migration before the one named.</summary>
    private static async Task<IdentityDb> MigratedToJustBeforeAsync(TestDatabase database, string migration)
    {
        IdentityDb db = database.Provider == "PostgreSql"
            ? new PostgreSqlIdentityDb(DatabaseSetup.Configure(new DbContextOptionsBuilder<PostgreSqlIdentityDb>(), DatabaseProvider.PostgreSql, database.ConnectionString).Options)
            : new SqliteIdentityDb(DatabaseSetup.Configure(new DbContextOptionsBuilder<SqliteIdentityDb>(), DatabaseProvider.Sqlite, database.ConnectionString).Options);
        var migrations = db.Database.GetMigrations().ToList();
        var index = migrations.FindIndex(m => m.EndsWith(migration, StringComparison.Ordinal));
        await db.GetService<IMigrator>().MigrateAsync(migrations[index - 1]);
        return db;
    }

    private static IdentityDb Create(string provider) => provider switch
    {
        "Sqlite" => new SqliteDesignFactory().CreateDbContext([]),
        "PostgreSql" => new PostgreSqlDesignFactory().CreateDbContext([]),
        _ => new SqlServerDesignFactory().CreateDbContext([]),
    };
}
