using IdentityService.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace IdentityService.Diagnostics;

public static class DiagnosticsSetup
{
    public static IServiceCollection AddDiagnostics(this IServiceCollection services)
    {
        services.AddProblemDetails();
        // A body the server cannot parse (a form past its limits or with undecodable characters, read by
        // OpenIddict or by page binding) is the caller's error: 400, not 500; a write that lost a race, 409.
        services.Configure<Microsoft.AspNetCore.Builder.ExceptionHandlerOptions>(options => options.StatusCodeSelector = StatusFor);
        services.AddHealthChecks().AddCheck<DatabaseReadyCheck>("database", tags: ["ready"]);
        return services;
    }

    /// <summary>The status of a request that threw: the caller's errors are theirs (400), a write that lost a race 409, the rest 500.</summary>
    public static int StatusFor(Exception exception) => exception switch
    {
        BadHttpRequestException bad => bad.StatusCode,
        InvalidDataException or Microsoft.AspNetCore.Mvc.ModelBinding.ValueProviderException => StatusCodes.Status400BadRequest,
        // Two writes of the same row at once (two admins, or a script's parallel calls): the later one is told to
        // read again and retry, as an optimistic-concurrency failure is meant to be answered.
        _ when LostARace(exception) => StatusCodes.Status409Conflict,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>
    /// Whether a write failed because another changed the same rows meanwhile: EF Core's and OpenIddict's concurrency
    /// failures, and PostgreSQL's serialization failure or deadlock (a transaction such as OpenIddict's deletion of a
    /// client with its tokens, meeting a concurrent update), however deep EF Core wrapped them.
    /// </summary>
    public static bool LostARace(Exception exception)
    {
        for (var e = (Exception?)exception; e is not null; e = e.InnerException)
        {
            if (e is DbUpdateConcurrencyException or OpenIddict.Abstractions.OpenIddictExceptions.ConcurrencyException
                or Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.SerializationFailure or Npgsql.PostgresErrorCodes.DeadlockDetected })
            {
                return true;
            }
        }

        return false;
    }

    public static IEndpointRouteBuilder MapDiagnostics(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks("/health/live", new() { Predicate = _ => false });
        endpoints.MapHealthChecks("/health/ready", new() { Predicate = check => check.Tags.Contains("ready") });
        return endpoints;
    }
}

/// <summary>Ready when the database answers and has no pending migration.</summary>
internal sealed class DatabaseReadyCheck(IServiceScopeFactory scopes) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var scope = scopes.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            if (!await db.Database.CanConnectAsync(cancellationToken))
            {
                return HealthCheckResult.Unhealthy("The database does not answer.");
            }

            var pending = await db.Database.GetPendingMigrationsAsync(cancellationToken);
            return pending.Any() ? HealthCheckResult.Unhealthy("The database has pending migrations.") : HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy("The database check failed.", e);
        }
    }
}
