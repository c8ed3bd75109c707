using System.Diagnostics.Metrics;
using System.Threading.Channels;
using IdentityService.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
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
/// themselves: there the UPDATE runs on the request's own context, as it always did.
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

    public FamilyAdvances(IServiceProvider services, ILogger<FamilyAdvances> logger)
    {
        _services = services;
        _logger = logger;
        _writer = new Lazy<Task>(() => Task.Run(WriteAsync), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Batches committed so far (SQLite), and the UPDATEs they held: for the tests and the benchmark's notes.</summary>
    internal (long Batches, long Advances) Committed => (Interlocked.Read(ref _batches), Interlocked.Read(ref _advances));

    /// <summary>UPDATEs queued and not yet taken by the writer.</summary>
    internal int Queued => _queue.Reader.Count;

    /// <summary>
    /// Moves the family <paramref name="id"/> of <paramref name="db"/>'s tenant from <paramref name="generation"/> to
    /// <paramref name="next"/> if it is live and there; answers 1 if it did, 0 if it did not (revoked, gone, elsewhere).
    /// </summary>
    public Task<int> AdvanceAsync(IdentityDb db, Guid id, int generation, int next, DateTimeOffset now, string stamp, CancellationToken cancellationToken)
    {
        if (db is not SqliteIdentityDb || db.Database.CurrentTransaction is not null)
        {
            // The tenant's query filter applies (the request's context is bound to its tenant).
            return db.InTurnAsync(token => db.Authorizations
                .Where(a => a.Id == id && a.Status == Statuses.Valid && a.TokenGeneration == generation)
                .ExecuteUpdateAsync(u => u
                    .SetProperty(a => a.TokenGeneration, next)
                    .SetProperty(a => a.RotatedAt, now)
                    .SetProperty(a => a.ConcurrencyToken, stamp), token), cancellationToken);
        }

        var tenantId = db.CurrentTenantId ?? throw new InvalidOperationException("A token family is moved on outside a tenant.");
        // Not cancelled with the request: once queued, the UPDATE may already be in a transaction with others'.
        var advance = new Advance(tenantId, id, generation, next, now, stamp);
        if (!_queue.Writer.TryWrite(advance))
        {
            throw new ObjectDisposedException(nameof(FamilyAdvances));
        }

        _ = _writer.Value;
        return advance.Done.Task;
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
                    await using var update = RotationStatement.Prepare(db, transaction.GetDbTransaction());
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
    /// The family UPDATE as one prepared SQLite statement, run once per refresh of a batch: the batch's context serves
    /// no request and has no tenant, so each run names its tenant in the WHERE. Table, columns and the conversion of
    /// each value (a GUID as text, a time as a number) are taken from the EF Core model, so the statement writes what
    /// EF Core's <c>ExecuteUpdate</c> wrote (which rebuilt its query and looked it up on every call).
    /// </summary>
    private sealed class RotationStatement : IAsyncDisposable
    {
        private readonly System.Data.Common.DbCommand _command;
        private readonly Slot _tenant, _id, _generation, _next, _now, _stamp;

        private RotationStatement(System.Data.Common.DbCommand command, Slot[] slots)
        {
            _command = command;
            (_tenant, _id, _generation, _next, _now, _stamp) = (slots[0], slots[1], slots[2], slots[3], slots[4], slots[5]);
        }

        public static RotationStatement Prepare(IdentityDb db, System.Data.Common.DbTransaction transaction)
        {
            var entity = db.Model.FindEntityType(typeof(TenantAuthorization))!;
            var table = Microsoft.EntityFrameworkCore.Metadata.StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
            var sql = db.GetService<ISqlGenerationHelper>();
            var command = db.Database.GetDbConnection().CreateCommand();
            command.Transaction = transaction;
            var slots = new Slot[7]; // the seventh, the status, keeps the value it is made with
            string Column(string property) => sql.DelimitIdentifier(entity.FindProperty(property)!.GetColumnName(table)!);
            string Parameter(int index, string property, object sample)
            {
                // The property's own type mapping makes the parameter (its provider type) and converts each value.
                var mapping = entity.FindProperty(property)!.GetRelationalTypeMapping();
                var parameter = mapping.CreateParameter(command, "@p" + index, sample);
                command.Parameters.Add(parameter);
                slots[index] = new Slot(parameter, mapping.Converter);
                return parameter.ParameterName;
            }

            command.CommandText =
                $"UPDATE {sql.DelimitIdentifier(table.Name, table.Schema)} SET " +
                $"{Column(nameof(TenantAuthorization.TokenGeneration))} = {Parameter(3, nameof(TenantAuthorization.TokenGeneration), 0)}, " +
                $"{Column(nameof(TenantAuthorization.RotatedAt))} = {Parameter(4, nameof(TenantAuthorization.RotatedAt), DateTimeOffset.UnixEpoch)}, " +
                $"{Column(nameof(TenantAuthorization.ConcurrencyToken))} = {Parameter(5, nameof(TenantAuthorization.ConcurrencyToken), "")} " +
                $"WHERE {Column(nameof(TenantAuthorization.TenantId))} = {Parameter(0, nameof(TenantAuthorization.TenantId), "")} " +
                $"AND {Column(nameof(TenantAuthorization.Id))} = {Parameter(1, nameof(TenantAuthorization.Id), Guid.Empty)} " +
                $"AND {Column(nameof(TenantAuthorization.Status))} = {Parameter(6, nameof(TenantAuthorization.Status), Statuses.Valid)} " +
                $"AND {Column(nameof(TenantAuthorization.TokenGeneration))} = {Parameter(2, nameof(TenantAuthorization.TokenGeneration), 0)}";
            command.Prepare();
            return new RotationStatement(command, slots);
        }

        public Task<int> ExecuteAsync(Advance advance, CancellationToken cancellationToken)
        {
            _tenant.Set(advance.TenantId);
            _id.Set(advance.Id);
            _generation.Set(advance.Generation);
            _next.Set(advance.Next);
            _now.Set(advance.Now);
            _stamp.Set(advance.Stamp);
            return _command.ExecuteNonQueryAsync(cancellationToken);
        }

        public ValueTask DisposeAsync() => _command.DisposeAsync();

        private readonly record struct Slot(System.Data.Common.DbParameter Parameter, Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter? Converter)
        {
            public void Set(object value) => Parameter.Value = Converter is null ? value : Converter.ConvertToProvider(value) ?? DBNull.Value;
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
