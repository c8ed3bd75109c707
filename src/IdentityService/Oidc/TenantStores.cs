using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using OpenIddict.EntityFrameworkCore;
using static OpenIddict.Abstractions.OpenIddictExceptions;

namespace IdentityService.Oidc;

/// <summary>
/// OpenIddict's Entity Framework Core token store, with the reads and writes of a grant made cheaper; what it
/// stores and how it checks concurrency do not change.
/// <list type="bullet">
/// <item>A token is read with its authorization only (compiled query), not with a copy of its client's row:
/// OpenIddict needs only the client's id, which the <see cref="TenantToken.ApplicationId"/> column gives.</item>
/// <item>A new token points at its client by id: no query loads the client to link it.</item>
/// <item>An update of a loaded token writes the columns that changed (a redemption: status, date and
/// concurrency token), not every column with the payload; the concurrency token is still checked.</item>
/// </list>
/// </summary>
internal sealed class TenantTokenStore(
    IMemoryCache cache,
    IOpenIddictEntityFrameworkCoreContext context,
    IOptionsMonitor<OpenIddictEntityFrameworkCoreOptions> options,
    CodeIssuanceWrites writes)
    : OpenIddictEntityFrameworkCoreTokenStore<TenantToken, TenantApplication, TenantAuthorization, Guid>(cache, context, options)
{
    private static readonly Func<DbContext, Guid, CancellationToken, Task<TenantToken?>> ById = EF.CompileAsyncQuery(
        (DbContext db, Guid id, CancellationToken _) => db.Set<TenantToken>().AsTracking().Include(t => t.Authorization).FirstOrDefault(t => t.Id == id));

    private static readonly Func<DbContext, string, CancellationToken, Task<TenantToken?>> ByReferenceId = EF.CompileAsyncQuery(
        (DbContext db, string referenceId, CancellationToken _) => db.Set<TenantToken>().AsTracking().Include(t => t.Authorization).FirstOrDefault(t => t.ReferenceId == referenceId));

    public override async ValueTask<TenantToken?> FindByIdAsync(string identifier, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        var db = await Context.GetDbContextAsync(cancellationToken);
        var key = Guid.Parse(identifier);
        return Tracked(db, t => t.Id == key) ?? await ById(db, key, cancellationToken);
    }

    /// <summary>While a code is being issued, the new row is only added: it is saved with its payload (<see cref="CodeIssuanceWrites"/>).</summary>
    public override async ValueTask CreateAsync(TenantToken token, CancellationToken cancellationToken)
    {
        if (!writes.Deferred)
        {
            await base.CreateAsync(token, cancellationToken);
            return;
        }

        (await Context.GetDbContextAsync(cancellationToken)).Add(token);
    }

    public override async ValueTask<TenantToken?> FindByReferenceIdAsync(string identifier, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        var db = await Context.GetDbContextAsync(cancellationToken);
        return Tracked(db, t => string.Equals(t.ReferenceId, identifier, StringComparison.Ordinal)) ?? await ByReferenceId(db, identifier, cancellationToken);
    }

    public override ValueTask<string?> GetApplicationIdAsync(TenantToken token, CancellationToken cancellationToken) =>
        new((token.Application?.Id ?? token.ApplicationId)?.ToString());

    public override ValueTask<string?> GetAuthorizationIdAsync(TenantToken token, CancellationToken cancellationToken) =>
        new((token.Authorization?.Id ?? token.AuthorizationId)?.ToString());

    public override ValueTask SetApplicationIdAsync(TenantToken token, string? identifier, CancellationToken cancellationToken)
    {
        var key = StoreIds.Parse(identifier);
        if (token.Application is not null && token.Application.Id != key)
        {
            // A loaded client that changes: OpenIddict's way, which keeps the navigation and the key in step.
            return base.SetApplicationIdAsync(token, identifier, cancellationToken);
        }

        token.ApplicationId = key;
        return ValueTask.CompletedTask;
    }

    public override ValueTask SetAuthorizationIdAsync(TenantToken token, string? identifier, CancellationToken cancellationToken)
    {
        var key = StoreIds.Parse(identifier);
        if (token.Authorization is not null && token.Authorization.Id != key)
        {
            return base.SetAuthorizationIdAsync(token, identifier, cancellationToken);
        }

        token.AuthorizationId = key;
        return ValueTask.CompletedTask;
    }

    public override async ValueTask UpdateAsync(TenantToken token, CancellationToken cancellationToken)
    {
        var db = await Context.GetDbContextAsync(cancellationToken);
        var entry = db.Entry(token);
        if (entry.State is EntityState.Detached)
        {
            await base.UpdateAsync(token, cancellationToken);
            return;
        }

        // Tracked: change detection finds the columns that changed; the concurrency token is part of the WHERE.
        token.ConcurrencyToken = Guid.NewGuid().ToString();
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException exception)
        {
            entry.State = EntityState.Unchanged;
            throw new ConcurrencyException("The token was changed by another request.", exception);
        }
    }

    public override Guid ConvertIdentifierFromString(string? identifier) => StoreIds.Parse(identifier) ?? default;

    public override string? ConvertIdentifierToString(Guid identifier) => StoreIds.Format(identifier);

    private static TenantToken? Tracked(DbContext db, Func<TenantToken, bool> match)
    {
        foreach (var entry in db.ChangeTracker.Entries<TenantToken>())
        {
            if (match(entry.Entity))
            {
                return entry.Entity;
            }
        }

        return null;
    }
}

/// <summary>
/// OpenIddict's Entity Framework Core authorization store, where an authorization points at its client by id:
/// reading one does not copy its client's row, and creating one does not query the client to link it.
/// </summary>
internal sealed class TenantAuthorizationStore(
    IMemoryCache cache,
    IOpenIddictEntityFrameworkCoreContext context,
    IOptionsMonitor<OpenIddictEntityFrameworkCoreOptions> options,
    CodeIssuanceWrites writes)
    : OpenIddictEntityFrameworkCoreAuthorizationStore<TenantAuthorization, TenantApplication, TenantToken, Guid>(cache, context, options)
{
    private static readonly Func<DbContext, Guid, CancellationToken, Task<TenantAuthorization?>> ById = EF.CompileAsyncQuery(
        (DbContext db, Guid id, CancellationToken _) => db.Set<TenantAuthorization>().AsTracking().FirstOrDefault(a => a.Id == id));

    public override async ValueTask<TenantAuthorization?> FindByIdAsync(string identifier, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        var db = await Context.GetDbContextAsync(cancellationToken);
        var key = Guid.Parse(identifier);
        foreach (var entry in db.ChangeTracker.Entries<TenantAuthorization>())
        {
            if (entry.Entity.Id == key)
            {
                return entry.Entity;
            }
        }

        return await ById(db, key, cancellationToken);
    }

    /// <summary>While a code is being issued, the new authorization is only added: it is saved with the code (<see cref="CodeIssuanceWrites"/>).</summary>
    public override async ValueTask CreateAsync(TenantAuthorization authorization, CancellationToken cancellationToken)
    {
        if (!writes.Deferred)
        {
            await base.CreateAsync(authorization, cancellationToken);
            return;
        }

        (await Context.GetDbContextAsync(cancellationToken)).Add(authorization);
    }

    public override ValueTask<string?> GetApplicationIdAsync(TenantAuthorization authorization, CancellationToken cancellationToken) =>
        new((authorization.Application?.Id ?? authorization.ApplicationId)?.ToString());

    public override ValueTask SetApplicationIdAsync(TenantAuthorization authorization, string? identifier, CancellationToken cancellationToken)
    {
        var key = StoreIds.Parse(identifier);
        if (authorization.Application is not null && authorization.Application.Id != key)
        {
            return base.SetApplicationIdAsync(authorization, identifier, cancellationToken);
        }

        authorization.ApplicationId = key;
        return ValueTask.CompletedTask;
    }

    public override Guid ConvertIdentifierFromString(string? identifier) => StoreIds.Parse(identifier) ?? default;

    public override string? ConvertIdentifierToString(Guid identifier) => StoreIds.Format(identifier);
}

/// <summary>Ids as OpenIddict's stores pass them: strings, empty for none (parsed directly, not through a TypeConverter).</summary>
internal static class StoreIds
{
    public static Guid? Parse(string? identifier) => string.IsNullOrEmpty(identifier) ? null : Guid.Parse(identifier);

    public static string? Format(Guid identifier) => identifier == default ? null : identifier.ToString();
}
