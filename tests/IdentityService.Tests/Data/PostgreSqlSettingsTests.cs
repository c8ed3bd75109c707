using IdentityService.Data;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace IdentityService.Tests.Data;

/// <summary>How the service completes a PostgreSQL connection string, and what goes through which connection.</summary>
public sealed class PostgreSqlSettingsTests(ITestOutputHelper output)
{
    [Fact]
    public void RequestsAreMultiplexed_AndHotStatementsPrepared_UnlessTheConnectionStringSaysOtherwise()
    {
        var completed = new NpgsqlConnectionStringBuilder(PostgresConnections.ForRequests("Host=db.internal;Database=identity;Username=svc;Password=p"));
        Assert.Equal(PostgresConnections.AutoPrepared, completed.MaxAutoPrepare);
        Assert.True(completed.Multiplexing);
        Assert.Equal("db.internal", completed.Host);
        Assert.Equal("identity", completed.Database);
        Assert.Equal("p", completed.Password);

        // An operator's choice stands, however it is spelled; 0 keeps statements unprepared (e.g. behind PgBouncer).
        foreach (var (given, prepared, multiplexed) in new[]
                 {
                     ("Host=db;Max Auto Prepare=0", 0, true), ("Host=db;maxautoprepare=8", 8, true), ("Host=db;Multiplexing=false", PostgresConnections.AutoPrepared, false),
                     ("Host=db;MAX AUTO PREPARE=0;multiplexing=False", 0, false),
                 })
        {
            var builder = new NpgsqlConnectionStringBuilder(PostgresConnections.ForRequests(given));
            Assert.Equal(prepared, builder.MaxAutoPrepare);
            Assert.Equal(multiplexed, builder.Multiplexing);
        }
    }

    [Fact]
    public void WhatNeedsASession_HasAPlainConnection_OtherwiseAsTheRequests()
    {
        foreach (var given in new[] { "Host=db;Username=svc;Password=p", "Host=db;Multiplexing=true;Max Auto Prepare=4" })
        {
            var session = new NpgsqlConnectionStringBuilder(PostgresConnections.ForSessions(given));
            var requests = new NpgsqlConnectionStringBuilder(PostgresConnections.ForRequests(given));
            Assert.False(session.Multiplexing);
            Assert.Equal(requests.MaxAutoPrepare, session.MaxAutoPrepare);
            Assert.Equal(requests.Host, session.Host);
            Assert.Equal(requests.Password, session.Password);
        }
    }

    /// <summary>
    /// On PostgreSQL the service starts (migrations and the start-up's lock on a plain connection), its requests'
    /// contexts are multiplexed, and the Data Protection key ring, whose store is synchronous, is written to and read
    /// back from the database through its own context. On SQLite the ring is in the same table, through the
    /// requests' context.
    /// </summary>
    [Fact]
    public async Task TheKeyRingIsKeptInTheDatabase_AndOnPostgreSqlTheRequestsAreMultiplexed()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        var postgres = TestDatabase.PostgresServer is not null;
        using (var scope = factory.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            Assert.Equal(postgres, db.Database.IsNpgsql());
            if (postgres)
            {
                Assert.True(new NpgsqlConnectionStringBuilder(db.Database.GetConnectionString()).Multiplexing);
                Assert.False(new NpgsqlConnectionStringBuilder(scope.ServiceProvider.GetRequiredService<PostgresKeysDb>().Database.GetConnectionString()).Multiplexing);
            }
        }

        // A new key is stored synchronously by the key manager, and found in the table the migrations made.
        var keys = factory.Services.GetRequiredService<IKeyManager>();
        var created = keys.CreateNewKey(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(90));
        using (var scope = factory.Services.CreateScope())
        {
            var rows = await scope.ServiceProvider.GetRequiredService<IdentityDb>().DataProtectionKeys.AsNoTracking().ToListAsync();
            Assert.Contains(rows, row => row.FriendlyName == $"key-{created.KeyId:D}");
        }

        // And read back (synchronously) by a fresh read of the ring, which protects and unprotects with it.
        Assert.Contains(keys.GetAllKeys(), key => key.KeyId == created.KeyId);
        var protector = factory.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("settings-test");
        Assert.Equal("payload", protector.Unprotect(protector.Protect("payload")));
    }
}
