using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using IdentityService.Data;
using IdentityService.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>
/// Runs the UPDATE that moves a token family on at a refresh (<see cref="TokenFamilies"/>): live, at the presented
/// token's generation, moved to the next.
/// <para>
/// On SQLite the refreshes that arrive together are committed together (group commit): SQLite takes one writer at a
/// time and flushes its log to disk at each commit (<c>synchronous=FULL</c>), so one commit per refresh made the
/// refreshes of the whole process wait in line for one disk flush each. Here a single writer takes every family
/// UPDATE queued while the previous commit was flushing (and while it waited for the process's write gate), runs
/// them in one transaction and flushes once. Each request still answers only after the commit that holds its UPDATE
/// is on disk, and each UPDATE keeps its own WHERE (its tenant, its family, valid, at its generation), so of two
/// requests with one token in the same batch only the first moves the family and the second finds nothing, as
/// before. Other databases take concurrent commits on their own connections and group their log flushes
/// themselves: there the same UPDATE runs on the request's own context and connection, and on PostgreSQL a refresh
/// sends it in one batch with its user's read (<see cref="ReadUserAndAdvanceAsync"/>).
/// </para>
/// </summary>
internal sealed class FamilyAdvances : IAsyncDisposable, IDisposable
{
    internal const int MaxBatch = 128;

    private static readonly Meter Meter = new("IdentityService.TokenFamilies");
    private static readonly Histogram<int> BatchSizes = Meter.CreateHistogram<int>(
        "identityservice.refresh.group_commit.size", unit: "{refresh}", description: "Family UPDATEs committed together by one SQLite transaction.");

    private readonly IServiceProvider _services;
    private readonly ILogger<FamilyAdvances> _logger;
    private readonly Channel<Advance> _queue = Channel.CreateUnbounded<Advance>();
    private readonly Lazy<Task> _writer;
    private long _batches;
    private long _advances;
    private long _withUserReads;

    public FamilyAdvances(IServiceProvider services, ILogger<FamilyAdvances> logger)
    {
        _services = services;
        _logger = logger;
        _writer = new Lazy<Task>(() => Task.Run(WriteAsync), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Batches committed so far (SQLite), and the UPDATEs they held: for the tests and the benchmark's notes.</summary>
    internal (long Batches, long Advances) Committed => (Interlocked.Read(ref _batches), Interlocked.Read(ref _advances));

    /// <summary>UPDATEs sent with their user's read (<see cref="ReadUserAndAdvanceAsync"/>): for the tests.</summary>
    internal long WithUserReads => Interlocked.Read(ref _withUserReads);

    /// <summary>UPDATEs queued and not yet taken by the writer.</summary>
    internal int Queued => _queue.Reader.Count;

    /// <summary>
    /// Moves the family <paramref name="id"/> of <paramref name="db"/>'s tenant from <paramref name="generation"/> to
    /// <paramref name="next"/> if it is live and there; answers 1 if it did, 0 if it did not (revoked, gone, elsewhere).
    /// </summary>
    public Task<int> AdvanceAsync(IdentityDb db, Guid id, int generation, int next, DateTimeOffset now, string stamp, CancellationToken cancellationToken)
    {
        var tenantId = db.CurrentTenantId ?? throw new InvalidOperationException("A token family is moved on outside a tenant.");
        if (db is not SqliteIdentityDb || db.Database.CurrentTransaction is not null)
        {
            // On the request's own context and connection, in its transaction if it has one.
            return db.InTurnAsync(token => AdvanceOnAsync(db, new Advance(tenantId, id, generation, next, now, stamp), token), cancellationToken);
        }

        // Not cancelled with the request: once queued, the UPDATE may already be in a transaction with others'.
        var advance = new Advance(tenantId, id, generation, next, now, stamp);
        if (!_queue.Writer.TryWrite(advance))
        {
            throw new ObjectDisposedException(nameof(FamilyAdvances));
        }

        _ = _writer.Value;
        return advance.Done.Task;
    }

    /// <summary>
    /// A refresh on a database that takes concurrent commits (not SQLite, whose UPDATEs are committed in groups): the
    /// read of the grant's user (<see cref="UserProfiles.SelectById"/>) and the family's UPDATE sent as one batch, so
    /// the refresh makes one round trip to the database where it made two (each a send, a wait and a wake-up, on both
    /// sides). They run in that order, in the batch's one transaction. Answers the user's profile (null when the user
    /// is gone) and what the UPDATE did, as <see cref="AdvanceAsync"/>: 1 moved, 0 not.
    /// </summary>
    public async Task<(UserProfile? User, int Moved)> ReadUserAndAdvanceAsync(
        IdentityDb db, Guid userId, Guid id, int generation, int next, DateTimeOffset now, string stamp, CancellationToken cancellationToken)
    {
        if (db is SqliteIdentityDb)
        {
            throw new InvalidOperationException("On SQLite a family is moved on by the group commit: the user is read alone.");
        }

        var tenantId = db.CurrentTenantId ?? throw new InvalidOperationException("A token family is moved on outside a tenant.");
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            var connection = db.Database.GetDbConnection();
            await using var batch = connection.CreateBatch();
            batch.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
            await using var factory = connection.CreateCommand();
            batch.BatchCommands.Add(UserProfiles.SelectById(db, batch, factory, userId));
            var update = RotationStatement.InBatch(db, batch, factory, new Advance(tenantId, id, generation, next, now, stamp));
            batch.BatchCommands.Add(update);

            UserProfile? user;
            await using (var reader = await batch.ExecuteReaderAsync(cancellationToken))
            {
                user = await reader.ReadAsync(cancellationToken) ? UserProfiles.Read(reader) : null;
                while (await reader.NextResultAsync(cancellationToken))
                {
                }
            }

            Interlocked.Increment(ref _withUserReads);
            return (user, update.RecordsAffected);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static async Task<int> AdvanceOnAsync(IdentityDb db, Advance advance, CancellationToken cancellationToken)
    {
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            // Not prepared: one run per command. Npgsql prepares the statements a connection runs often by itself.
            await using var update = RotationStatement.Create(db, db.Database.CurrentTransaction?.GetDbTransaction(), prepare: false);
            return await update.ExecuteAsync(advance, cancellationToken);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private async Task WriteAsync()
    {
        var batch = new List<Advance>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            if (_queue.Reader.TryRead(out var first))
            {
                batch.Add(first);
            }

            try
            {
                await using var db = _services.GetRequiredService<IDbContextFactory<SqliteIdentityDb>>().CreateDbContext();
                // The writer takes the process's write gate for the file first, then everything queued by then:
                // the refreshes that arrived while another write held the gate join this commit.
                await db.InTurnAsync(async token =>
                {
                    while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var queued))
                    {
                        batch.Add(queued);
                    }

                    if (batch.Count == 0)
                    {
                        return 0;
                    }

                    await using var transaction = await db.Database.BeginTransactionAsync(token);
                    await using var update = RotationStatement.Create(db, transaction.GetDbTransaction(), prepare: true);
                    foreach (var advance in batch)
                    {
                        advance.Moved = await update.ExecuteAsync(advance, token);
                    }

                    await transaction.CommitAsync(token);
                    return batch.Count;
                }, CancellationToken.None);

                if (batch.Count > 0)
                {
                    Interlocked.Increment(ref _batches);
                    Interlocked.Add(ref _advances, batch.Count);
                    BatchSizes.Record(batch.Count);
                }

                foreach (var advance in batch)
                {
                    advance.Done.TrySetResult(advance.Moved);
                }
            }
            catch (Exception exception)
            {
                // Nothing of the batch was committed: each of its requests fails as its own UPDATE would have.
                _logger.LogError(exception, "A group commit of {Count} refresh-token rotations failed.", batch.Count);
                foreach (var advance in batch)
                {
                    advance.Done.TrySetException(exception);
                }
            }

            batch.Clear();
        }
    }

    /// <summary>Takes no more UPDATEs; those queued are still written by the writer, which is not waited for here.</summary>
    public void Dispose() => _queue.Writer.TryComplete();

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_writer.IsValueCreated)
        {
            await _writer.Value;
        }
    }

    /// <summary>
    /// The family UPDATE as one statement that names its tenant in the WHERE: a SQLite batch's context serves no request
    /// and has no tenant. Table, columns and the conversion of each value (a GUID as text, a time as a number) are
    /// taken from the EF Core model, once per provider, so the statement writes what EF Core's <c>ExecuteUpdate</c>
    /// wrote; that rebuilt its query and looked it up in its cache on every call, a tenth of a refresh's CPU on
    /// PostgreSQL in a perf profile. On SQLite the command is made and prepared once per batch and run once per
    /// refresh of it; elsewhere it is made once per refresh, on the request's connection.
    /// </summary>
    private sealed class RotationStatement : IAsyncDisposable
    {
        // The parameters, in this order: what each run sets, then the status, which keeps the value it is made with.
        private static readonly string[] Properties =
        [
            nameof(TenantAuthorization.TenantId), nameof(TenantAuthorization.Id), nameof(TenantAuthorization.TokenGeneration),
            nameof(TenantAuthorization.TokenGeneration), nameof(TenantAuthorization.RotatedAt), nameof(TenantAuthorization.ConcurrencyToken),
            nameof(TenantAuthorization.Status),
        ];

        // One per context type: each provider writes its own SQL and maps its own parameter types.
        private static readonly ConcurrentDictionary<Type, Shape> Shapes = new();

        private readonly DbCommand _command;
        private readonly DbParameter[] _parameters;
        private readonly ValueConverter?[] _converters;

        private RotationStatement(DbCommand command, DbParameter[] parameters, Shape shape)
        {
            _command = command;
            _parameters = parameters;
            _converters = shape.Converters;
        }

        public static RotationStatement Create(IdentityDb db, DbTransaction? transaction, bool prepare)
        {
            var shape = Shapes.GetOrAdd(db.GetType(), static (_, context) => Shape.Of(context), db);
            var command = db.Database.GetDbConnection().CreateCommand();
            command.Transaction = transaction;
            command.CommandText = shape.Sql;
            var parameters = new DbParameter[Properties.Length];
            for (var i = 0; i < parameters.Length; i++)
            {
                // The property's own type mapping makes the parameter (its provider type). The first values are
                // placeholders, each run sets its own; the status's stays.
                parameters[i] = shape.Mappings[i].CreateParameter(command, "@p" + i, shape.Samples[i]);
                command.Parameters.Add(parameters[i]);
            }

            if (prepare)
            {
                command.Prepare();
            }

            return new RotationStatement(command, parameters, shape);
        }

        /// <summary>The statement as a command of <paramref name="batch"/>, with this advance's values (<paramref name="factory"/> makes the parameters).</summary>
        public static DbBatchCommand InBatch(IdentityDb db, DbBatch batch, DbCommand factory, Advance advance)
        {
            var shape = Shapes.GetOrAdd(db.GetType(), static (_, context) => Shape.Of(context), db);
            var command = batch.CreateBatchCommand();
            command.CommandText = shape.Sql;
            for (var i = 0; i < Properties.Length; i++)
            {
                command.Parameters.Add(shape.Mappings[i].CreateParameter(factory, "@p" + i, i < Values ? ValueOf(advance, i) : shape.Samples[i]));
            }

            return command;
        }

        public Task<int> ExecuteAsync(Advance advance, CancellationToken cancellationToken)
        {
            for (var i = 0; i < Values; i++)
            {
                Set(i, ValueOf(advance, i));
            }

            return _command.ExecuteNonQueryAsync(cancellationToken);
        }

        // How many parameters take the advance's values (the first ones of Properties; the status keeps its own).
        private const int Values = 6;

        // The advance's value for the parameter at this index of Properties, without an array made per run.
        private static object ValueOf(Advance advance, int index) => index switch
        {
            0 => advance.TenantId,
            1 => advance.Id,
            2 => advance.Generation,
            3 => advance.Next,
            4 => advance.Now,
            5 => advance.Stamp,
            _ => throw new ArgumentOutOfRangeException(nameof(index)),
        };

        private void Set(int index, object value) =>
            _parameters[index].Value = _converters[index] is { } converter ? converter.ConvertToProvider(value) ?? DBNull.Value : value;

        public ValueTask DisposeAsync() => _command.DisposeAsync();

        /// <summary>The statement's text and its parameters' type mappings, read from the model once.</summary>
        private sealed record Shape(string Sql, RelationalTypeMapping[] Mappings, ValueConverter?[] Converters, object[] Samples)
        {
            public static Shape Of(IdentityDb db)
            {
                var entity = db.Model.FindEntityType(typeof(TenantAuthorization))!;
                var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
                var sql = db.GetService<ISqlGenerationHelper>();
                string Column(int index) => sql.DelimitIdentifier(entity.FindProperty(Properties[index])!.GetColumnName(table)!);
                var mappings = Properties.Select(p => entity.FindProperty(p)!.GetRelationalTypeMapping()).ToArray();
                return new Shape(
                    $"UPDATE {sql.DelimitIdentifier(table.Name, table.Schema)} " +
                    $"SET {Column(3)} = @p3, {Column(4)} = @p4, {Column(5)} = @p5 " +
                    $"WHERE {Column(0)} = @p0 AND {Column(1)} = @p1 AND {Column(6)} = @p6 AND {Column(2)} = @p2",
                    mappings,
                    [.. mappings.Select(m => m.Converter)],
                    ["", Guid.Empty, 0, 0, DateTimeOffset.UnixEpoch, "", Statuses.Valid]);
            }
        }
    }

    private sealed class Advance(string tenantId, Guid id, int generation, int next, DateTimeOffset now, string stamp)
    {
        public string TenantId { get; } = tenantId;
        public Guid Id { get; } = id;
        public int Generation { get; } = generation;
        public int Next { get; } = next;
        public DateTimeOffset Now { get; } = now;
        public string Stamp { get; } = stamp;
        public int Moved { get; set; }
        public TaskCompletionSource<int> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
