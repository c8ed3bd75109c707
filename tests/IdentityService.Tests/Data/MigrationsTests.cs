using IdentityService.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

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

    private static IdentityDb Create(string provider) => provider switch
    {
        "Sqlite" => new SqliteDesignFactory().CreateDbContext([]),
        "PostgreSql" => new PostgreSqlDesignFactory().CreateDbContext([]),
        _ => new SqlServerDesignFactory().CreateDbContext([]),
    };
}
