using IdentityService.Data;

namespace IdentityService.Tests.Data;

/// <summary>How the service completes a PostgreSQL connection string.</summary>
public sealed class PostgreSqlSettingsTests
{
    [Fact]
    public void HotStatementsArePrepared_UnlessTheConnectionStringSaysOtherwise()
    {
        var completed = new Npgsql.NpgsqlConnectionStringBuilder(DatabaseSetup.WithAutoPrepare("Host=db.internal;Database=identity;Username=svc;Password=p"));
        Assert.Equal(DatabaseSetup.AutoPrepared, completed.MaxAutoPrepare);
        Assert.Equal("db.internal", completed.Host);
        Assert.Equal("p", completed.Password);

        // An operator's choice stands, however it is spelled; 0 keeps statements unprepared (e.g. behind PgBouncer).
        foreach (var explicitly in new[] { "Host=db;Max Auto Prepare=0", "Host=db;maxautoprepare=0", "Host=db;MAX AUTO PREPARE=8" })
        {
            Assert.Equal(explicitly, DatabaseSetup.WithAutoPrepare(explicitly));
        }
    }
}
