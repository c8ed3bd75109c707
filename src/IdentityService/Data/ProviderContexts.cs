using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace IdentityService.Data;

// One context type per database provider, each with its own migrations folder.

public sealed class SqliteIdentityDb(DbContextOptions<SqliteIdentityDb> options, TenantContext tenant) : IdentityDb(options, tenant)
{
    /// <summary>SQLite has no date type: times are stored as orderable 64-bit numbers, so queries can compare them.</summary>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        base.ConfigureConventions(configurationBuilder);
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<DateTimeOffsetToBinaryConverter>();
    }
}

public sealed class PostgreSqlIdentityDb(DbContextOptions<PostgreSqlIdentityDb> options, TenantContext tenant) : IdentityDb(options, tenant);

public sealed class SqlServerIdentityDb(DbContextOptions<SqlServerIdentityDb> options, TenantContext tenant) : IdentityDb(options, tenant);

// Design-time factories for `dotnet ef migrations add`; they need no server.

internal sealed class SqliteDesignFactory : IDesignTimeDbContextFactory<SqliteIdentityDb>
{
    public SqliteIdentityDb CreateDbContext(string[] args) =>
        new(DatabaseSetup.Configure(new DbContextOptionsBuilder<SqliteIdentityDb>(), DatabaseProvider.Sqlite, "Data Source=design.db").Options, new TenantContext());
}

internal sealed class PostgreSqlDesignFactory : IDesignTimeDbContextFactory<PostgreSqlIdentityDb>
{
    public PostgreSqlIdentityDb CreateDbContext(string[] args) =>
        new(DatabaseSetup.Configure(new DbContextOptionsBuilder<PostgreSqlIdentityDb>(), DatabaseProvider.PostgreSql, "Host=localhost;Database=design").Options, new TenantContext());
}

internal sealed class SqlServerDesignFactory : IDesignTimeDbContextFactory<SqlServerIdentityDb>
{
    public SqlServerIdentityDb CreateDbContext(string[] args) =>
        new(DatabaseSetup.Configure(new DbContextOptionsBuilder<SqlServerIdentityDb>(), DatabaseProvider.SqlServer, "Server=localhost;Database=design;TrustServerCertificate=true").Options, new TenantContext());
}
