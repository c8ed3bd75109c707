using System.Collections.Concurrent;
using System.Data.Common;
using System.Linq.Expressions;
using IdentityService.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace IdentityService.Users;

/// <summary>
/// The part of a user that tokens and the userinfo answer are made of: the id, the profile, email and phone. A type of
/// its own, not a partly filled <see cref="AppUser"/>, so it cannot reach <c>UserManager</c>'s updates.
/// </summary>
public sealed class UserProfile
{
    public Guid Id { get; init; }

    public string TenantId { get; init; } = "";

    public string? Name { get; init; }

    public string? GivenName { get; init; }

    public string? FamilyName { get; init; }

    public string? Locale { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? UpdatedAt { get; init; }

    public string? Email { get; init; }

    public bool EmailConfirmed { get; init; }

    public string? PhoneNumber { get; init; }

    public bool PhoneNumberConfirmed { get; init; }

    /// <summary>
    /// The profile's columns, as one projection: what <see cref="UserProfiles"/> reads (translated to SQL) and what
    /// <see cref="Of"/> takes from a user already read whole.
    /// </summary>
    internal static readonly Expression<Func<AppUser, UserProfile>> FromUser = u => new UserProfile
    {
        Id = u.Id,
        TenantId = u.TenantId,
        Name = u.Name,
        GivenName = u.GivenName,
        FamilyName = u.FamilyName,
        Locale = u.Locale,
        CreatedAt = u.CreatedAt,
        UpdatedAt = u.UpdatedAt,
        Email = u.Email,
        EmailConfirmed = u.EmailConfirmed,
        PhoneNumber = u.PhoneNumber,
        PhoneNumberConfirmed = u.PhoneNumberConfirmed,
    };

    private static readonly Func<AppUser, UserProfile> OfUser = FromUser.Compile();

    /// <summary>The profile of a user already read whole (at a sign-in).</summary>
    public static UserProfile Of(AppUser user) => OfUser(user);
}

/// <summary>
/// Reads a user's <see cref="UserProfile"/>: those columns only, untracked. The token endpoint (every code exchange
/// and refresh) and the userinfo endpoint read a user only to build claims; the whole tracked entity (password hash,
/// security stamp, lockout and two-factor columns, a change-tracking snapshot) was the largest piece of a refresh
/// after the signatures in a perf profile, and an <see cref="AppUser"/> made even for a projection draws a new
/// concurrency stamp (a random GUID) that nothing here reads.
/// </summary>
internal static class UserProfiles
{
    private static readonly Func<IdentityDb, Guid, CancellationToken, Task<UserProfile?>> ById = EF.CompileAsyncQuery(
        (IdentityDb db, Guid id, CancellationToken _) => db.Users.AsNoTracking()
            .Where(u => u.Id == id)
            .Select(UserProfile.FromUser)
            .FirstOrDefault());

    /// <summary>The profile of the current tenant's user with this subject (a user id), or null when there is none.</summary>
    public static Task<UserProfile?> FindAsync(IdentityDb db, string? subject, CancellationToken cancellationToken) =>
        Guid.TryParse(subject, out var id) ? ById(db, id, cancellationToken) : Task.FromResult<UserProfile?>(null);

    // The columns of the batched read, in the order Read takes them.
    private static readonly string[] Columns =
    [
        nameof(AppUser.Id), nameof(AppUser.TenantId), nameof(AppUser.Name), nameof(AppUser.GivenName), nameof(AppUser.FamilyName),
        nameof(AppUser.Locale), nameof(AppUser.CreatedAt), nameof(AppUser.UpdatedAt), nameof(AppUser.Email),
        nameof(AppUser.EmailConfirmed), nameof(AppUser.PhoneNumber), nameof(AppUser.PhoneNumberConfirmed),
    ];

    // One per context type: each provider writes its own SQL and maps its own parameter types.
    private static readonly ConcurrentDictionary<Type, Selection> Selections = new();

    /// <summary>
    /// The read of <see cref="FindAsync"/> as a command of <paramref name="batch"/>, for a request that sends it with a
    /// write in one round trip (a refresh on PostgreSQL: <c>FamilyAdvances.ReadUserAndAdvanceAsync</c>): the same
    /// columns of the user with this id in <paramref name="db"/>'s tenant, its SQL made from the EF Core model once per
    /// provider. Only for a provider that reads these columns' types without a value converter (PostgreSQL: a GUID,
    /// text, booleans and times with a zone); <paramref name="factory"/> makes the parameters (a batch's command cannot).
    /// </summary>
    internal static DbBatchCommand SelectById(IdentityDb db, DbBatch batch, DbCommand factory, Guid id)
    {
        var tenantId = db.CurrentTenantId ?? throw new InvalidOperationException("A user is read outside a tenant.");
        var selection = Selections.GetOrAdd(db.GetType(), static (_, context) => Selection.Of(context), db);
        var command = batch.CreateBatchCommand();
        command.CommandText = selection.Sql;
        command.Parameters.Add(selection.TenantId.CreateParameter(factory, "@u0", tenantId));
        command.Parameters.Add(selection.Id.CreateParameter(factory, "@u1", id));
        return command;
    }

    /// <summary>The profile on the row <paramref name="reader"/> is at, read by <see cref="SelectById"/>.</summary>
    internal static UserProfile Read(DbDataReader reader) => new()
    {
        Id = reader.GetGuid(0),
        TenantId = reader.GetString(1),
        Name = StringOrNull(reader, 2),
        GivenName = StringOrNull(reader, 3),
        FamilyName = StringOrNull(reader, 4),
        Locale = StringOrNull(reader, 5),
        CreatedAt = reader.GetFieldValue<DateTimeOffset>(6),
        UpdatedAt = reader.IsDBNull(7) ? null : reader.GetFieldValue<DateTimeOffset>(7),
        Email = StringOrNull(reader, 8),
        EmailConfirmed = reader.GetBoolean(9),
        PhoneNumber = StringOrNull(reader, 10),
        PhoneNumberConfirmed = reader.GetBoolean(11),
    };

    private static string? StringOrNull(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    /// <summary>The batched read's SQL and its two parameters' type mappings (the tenant, the id).</summary>
    private sealed record Selection(string Sql, RelationalTypeMapping TenantId, RelationalTypeMapping Id)
    {
        public static Selection Of(IdentityDb db)
        {
            var entity = db.Model.FindEntityType(typeof(AppUser))!;
            var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
            var sql = db.GetService<ISqlGenerationHelper>();
            var properties = Columns.Select(name => entity.FindProperty(name)!).ToArray();
            if (properties.FirstOrDefault(p => p.GetRelationalTypeMapping().Converter is not null) is { } converted)
            {
                throw new NotSupportedException($"{db.GetType().Name} stores {converted.Name} through a value converter: read the user with FindAsync.");
            }

            string Column(IProperty property) => sql.DelimitIdentifier(property.GetColumnName(table)!);
            var tenant = entity.FindProperty(nameof(AppUser.TenantId))!;
            var id = entity.FindProperty(nameof(AppUser.Id))!;
            return new Selection(
                $"SELECT {string.Join(", ", properties.Select(Column))} FROM {sql.DelimitIdentifier(table.Name, table.Schema)} " +
                $"WHERE {Column(tenant)} = @u0 AND {Column(id)} = @u1",
                tenant.GetRelationalTypeMapping(),
                id.GetRelationalTypeMapping());
        }
    }
}
