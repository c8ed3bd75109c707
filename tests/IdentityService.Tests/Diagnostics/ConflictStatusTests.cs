using IdentityService.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace IdentityService.Tests.Diagnostics;

/// <summary>
/// A write that lost a race answers 409, however the database said it: <c>ConcurrentChangeTests</c> met PostgreSQL's
/// serialization failure, wrapped twice by EF Core, when a client was deleted while it was being changed (a 500).
/// </summary>
public sealed class ConflictStatusTests
{
    [Fact]
    public void PostgreSqlSerializationFailuresAndDeadlocks_WrappedByEfCore_Are409()
    {
        foreach (var state in new[] { PostgresErrorCodes.SerializationFailure, PostgresErrorCodes.DeadlockDetected })
        {
            var thrown = new InvalidOperationException("An exception has been raised that is likely due to a transient failure.",
                new DbUpdateException("An error occurred while saving the entity changes.", new PostgresException("could not serialize access", "ERROR", "ERROR", state)));

            Assert.Equal(StatusCodes.Status409Conflict, DiagnosticsSetup.StatusFor(thrown));
        }
    }

    [Fact]
    public void OtherDatabaseErrors_Stay500()
    {
        var unique = new DbUpdateException("duplicate", new PostgresException("duplicate key", "ERROR", "ERROR", PostgresErrorCodes.UniqueViolation));

        Assert.Equal(StatusCodes.Status500InternalServerError, DiagnosticsSetup.StatusFor(unique));
        Assert.Equal(StatusCodes.Status500InternalServerError, DiagnosticsSetup.StatusFor(new InvalidOperationException("something else")));
        Assert.Equal(StatusCodes.Status409Conflict, DiagnosticsSetup.StatusFor(new DbUpdateConcurrencyException("lost")));
    }
}
