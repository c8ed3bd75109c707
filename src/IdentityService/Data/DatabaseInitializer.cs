using System.Security.Cryptography;
using IdentityService.Oidc;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Data;

/// <summary>The <c>Bootstrap</c> section: the first administrator, a client of the platform tenant.</summary>
public sealed class BootstrapOptions
{
    public const string Section = "Bootstrap";

    /// <summary>Client id of the platform administrator client. Default: <c>admin</c>.</summary>
    public string AdminClientId { get; set; } = "admin";

    /// <summary>Its secret. Required outside Development; in Development one is generated and logged once when unset.</summary>
    public string? AdminClientSecret { get; set; }
}

/// <summary>
/// At start: applies migrations (unless <c>Database:MigrateAtStart</c> is false), creates the reserved
/// <c>system</c> tenant and its keys, and creates or updates the bootstrap administrator client.
/// </summary>
public sealed partial class DatabaseInitializer(
    IServiceScopeFactory scopes,
    IOptions<DatabaseOptions> database,
    IOptions<BootstrapOptions> bootstrap,
    TenantOidcStateCache states,
    TimeProvider time,
    IHostEnvironment environment,
    ILogger<DatabaseInitializer> logger) : IHostedService
{
    /// <summary>The PostgreSQL advisory lock taken while an instance initializes the database (an arbitrary constant).</summary>
    private const long InitializationLock = 7_361_902_114_502_633;

    /// <summary>Runs before the server accepts requests: hosted services start before the web server.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Replicas started together on a new database race to create the system tenant and the bootstrap client
        // (on PostgreSQL an advisory lock serializes them; SQLite and SQL Server migrations take EF Core's lock).
        // The one that loses finds the rows made on its next pass. It loses either at the unique index (a
        // DbUpdateException) or, when the winner's client appears between its look-up and its insert, at
        // OpenIddict's own check that a client id is unique (a ValidationException).
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await InitializeAsync(migrate: database.Value.MigrateAtStart, cancellationToken);
                return;
            }
            catch (DbUpdateException e) when (attempt < 3)
            {
                LogStartRace(logger, attempt, e.InnerException?.Message ?? e.Message);
            }
            catch (OpenIddict.Abstractions.OpenIddictExceptions.ValidationException e) when (attempt < 3)
            {
                LogStartRace(logger, attempt, e.Message);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task InitializeAsync(bool migrate, CancellationToken cancellationToken)
    {
        using var scope = scopes.CreateScope();
        // On PostgreSQL, a plain connection: the lock below is held across statements, and migrations read their
        // history synchronously, neither of which the requests' multiplexed connections allow (PostgresConnections).
        var postgres = database.Value.Provider == DatabaseProvider.PostgreSql;
        await using var session = postgres ? PostgresConnections.SessionContext(scope.ServiceProvider) : null;
        var db = session ?? scope.ServiceProvider.GetRequiredService<IdentityDb>();
        if (postgres)
        {
            if (migrate)
            {
                // The lock below is taken on a connection to the database itself, which must exist first.
                await CreatePostgresDatabaseAsync(db, cancellationToken);
            }

            // One instance at a time initializes a PostgreSQL database: the others wait here, then find it done.
            await db.Database.OpenConnectionAsync(cancellationToken);
            await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_lock({InitializationLock})", cancellationToken);
        }

        try
        {
            await InitializeLockedAsync(db, scope.ServiceProvider, migrate, cancellationToken);
        }
        finally
        {
            if (postgres)
            {
                await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_unlock({InitializationLock})", CancellationToken.None);
                await db.Database.CloseConnectionAsync();
            }
        }
    }

    private static async Task CreatePostgresDatabaseAsync(IdentityDb db, CancellationToken cancellationToken)
    {
        var creator = db.GetService<IRelationalDatabaseCreator>();
        if (await creator.ExistsAsync(cancellationToken))
        {
            return;
        }

        try
        {
            await creator.CreateAsync(cancellationToken);
        }
        catch (Npgsql.PostgresException e) when (e.SqlState is Npgsql.PostgresErrorCodes.DuplicateDatabase or Npgsql.PostgresErrorCodes.UniqueViolation)
        {
            // Another instance created it a moment earlier.
        }
    }

    private async Task InitializeLockedAsync(IdentityDb db, IServiceProvider services, bool migrate, CancellationToken cancellationToken)
    {
        if (migrate)
        {
            await db.Database.MigrateAsync(cancellationToken);
        }

        if (db.Database.IsSqlite())
        {
            // Write-ahead logging: readers never wait for a writer, and a commit appends to the log instead of
            // rewriting pages. The mode is stored in the database file.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }

        var system = await db.Tenants.FirstOrDefaultAsync(t => t.Id == Tenant.SystemId, cancellationToken);
        if (system is null)
        {
            system = new Tenant { Id = Tenant.SystemId, DisplayName = "Platform", CreatedAt = time.GetUtcNow() };
            db.Tenants.Add(system);
            await db.SaveChangesAsync(cancellationToken);
        }

        services.GetRequiredService<TenantContext>().Set(system);
        states.SetFallback(await states.GetAsync(system, cancellationToken));
        await EnsureAdminClientAsync(services, cancellationToken);
    }

    private async Task EnsureAdminClientAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var manager = services.GetRequiredService<TenantApplicationManager>();
        var clientId = bootstrap.Value.AdminClientId;
        var secret = bootstrap.Value.AdminClientSecret;
        var existing = await manager.FindForChangeAsync(clientId, cancellationToken);
        if (string.IsNullOrEmpty(secret))
        {
            if (!environment.IsDevelopment())
            {
                throw new OptionsValidationException(BootstrapOptions.Section, typeof(BootstrapOptions),
                    ["Bootstrap:AdminClientSecret is required outside Development (environment variable Bootstrap__AdminClientSecret)."]);
            }

            if (existing is not null)
            {
                return;
            }

            secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            LogGeneratedSecret(logger, clientId, secret);
        }

        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = clientId,
            DisplayName = "Platform administrator",
            ClientType = ClientTypes.Confidential,
            Permissions =
            {
                Permissions.Endpoints.Token, Permissions.Endpoints.Introspection, Permissions.Endpoints.Revocation,
                Permissions.GrantTypes.ClientCredentials, Permissions.Prefixes.Scope + Clients.ManageScope,
            },
        };
        if (existing is null)
        {
            var entity = new TenantApplication { CreatedAt = time.GetUtcNow() };
            await manager.PopulateAsync(entity, descriptor, cancellationToken);
            await manager.CreateAsync(entity, secret, cancellationToken);
        }
        else
        {
            await manager.PopulateAsync(existing, descriptor, cancellationToken);
            await manager.UpdateAsync(existing, secret, cancellationToken);
        }
    }

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information,
        Message = "Another instance initialized the database at the same time (attempt {Attempt}: {Reason}); initializing again.")]
    private static partial void LogStartRace(ILogger logger, int attempt, string reason);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning,
        Message = "Development bootstrap: created the platform administrator client '{ClientId}' with the secret '{Secret}'. It is shown once; only its hash is stored.")]
    private static partial void LogGeneratedSecret(ILogger logger, string clientId, string secret);
}
