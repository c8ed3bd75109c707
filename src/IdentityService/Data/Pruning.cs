using IdentityService.Mfa;
using IdentityService.Oidc;
using IdentityService.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;

namespace IdentityService.Data;

/// <summary>
/// Deletes, every <see cref="DatabaseOptions.PruneIntervalMinutes"/>, the rows that can no longer be used, so that
/// tables written at every sign-in do not grow for ever: sign-ins' authorizations (one per sign-in: its refresh
/// token family) once every token they issued has expired, revoked consents, expired code rows, second-step
/// challenges, remembered browsers, reset links, sign-up links and revoked-token entries; audit entries past their
/// tenant's <see cref="Tenancy.Tenant.AuditRetentionDays"/>; and the devices and countries an account was last seen
/// from longer ago than a device keeps its id (<see cref="Pipeline.DeviceCookie.Lifetime"/>); webhook deliveries
/// that ended <see cref="WebhookDeliveryRetention"/> ago.
/// </summary>
/// <remarks>
/// <para>A sign-in's authorization is kept while a token of it may still be valid: until its last rotation (or its
/// creation) is older than the longest lifetime its tenant gives a token (refresh, access, ID token or code), plus
/// <see cref="Grace"/>. A tenant that shortens its refresh-token lifetime therefore ends older sign-ins by the new
/// lifetime at the next pass. Deleting the row never revives a token: a token whose authorization is missing is
/// refused exactly as a revoked one is.</para>
/// <para>Runs across tenants (the pass belongs to none; each statement names the rows' own tenant or deletes only
/// expired rows, whichever tenant has them), in batches of <see cref="Batch"/> rows so that SQLite's single writer
/// is never held long. Each replica runs it; deletes of the same rows by two replicas are harmless.</para>
/// </remarks>
public sealed class Pruning(IServiceScopeFactory scopes, TimeProvider time, IOptions<DatabaseOptions> options, ILogger<Pruning> logger) : BackgroundService
{
    public const int Batch = 1000;

    /// <summary>Kept past expiry, for clocks that differ between replicas and for looking into a recent incident.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromDays(1);

    /// <summary>How long a webhook's deliveries are listed after they ended.</summary>
    public static readonly TimeSpan WebhookDeliveryRetention = TimeSpan.FromDays(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.PruneIntervalMinutes == 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(options.Value.PruneIntervalMinutes), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await PruneAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogError(e, "Pruning expired rows failed; it is tried again in {Minutes} minutes.", options.Value.PruneIntervalMinutes);
            }
        }
    }

    /// <summary>One pass over every table that keeps expiring rows. Answers how many rows each lost.</summary>
    public async Task<IReadOnlyDictionary<string, int>> PruneAsync(CancellationToken cancellationToken)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var now = time.GetUtcNow();
        var cutoff = now - Grace;
        var counts = new Dictionary<string, int>
        {
            // Codes (and refresh tokens with a row, issued by versions before 0.7): a code row is what makes it
            // single-use, and an expired code is refused by its own expiry.
            ["tokens"] = await DeleteAsync(db, db.Tokens.IgnoreQueryFilters().Where(t => t.ExpirationDate != null && t.ExpirationDate < cutoff.UtcDateTime), cancellationToken),
            ["authorizations"] = await PruneAuthorizationsAsync(db, now, cancellationToken),
            ["mfaChallenges"] = await DeleteAsync(db, db.Set<MfaChallenge>().IgnoreQueryFilters().Where(c => c.ExpiresAt < cutoff), cancellationToken),
            ["trustedBrowsers"] = await DeleteAsync(db, db.Set<TrustedBrowser>().IgnoreQueryFilters().Where(b => b.ExpiresAt < cutoff), cancellationToken),
            ["passwordResetTokens"] = await DeleteAsync(db, db.Set<PasswordResetToken>().IgnoreQueryFilters().Where(t => t.ExpiresAt < cutoff), cancellationToken),
            ["pendingSignUps"] = await DeleteAsync(db, db.Set<PendingSignUp>().IgnoreQueryFilters().Where(p => p.ExpiresAt < cutoff), cancellationToken),
            // Small (an entry per token revoked before its expiry), and cleared per tenant at each revocation too.
            ["revokedTokens"] = await db.InTurnAsync(c => db.Set<RevokedToken>().IgnoreQueryFilters().Where(t => t.ExpiresAt < now).ExecuteDeleteAsync(c), cancellationToken),
            // A device whose id has expired in its browser is never seen again; a country not seen that long is new
            // again to the second-step and new-device checks.
            ["userSightings"] = await DeleteAsync(db, db.Set<Protection.UserSighting>().IgnoreQueryFilters().Where(s => s.LastSeen < now - Pipeline.DeviceCookie.Lifetime - Grace), cancellationToken),
            ["auditEvents"] = await PruneAuditAsync(db, now, cancellationToken),
            // A webhook's delivery log: a month of outcomes; pending deliveries end by their retries.
            ["webhookDeliveries"] = await DeleteAsync(db, db.Set<Webhooks.WebhookDelivery>().IgnoreQueryFilters()
                .Where(d => d.Status != Webhooks.WebhookDelivery.Pending && d.CreatedAt < now - WebhookDeliveryRetention), cancellationToken),
        };

        if (counts.Values.Any(c => c > 0))
        {
            logger.LogInformation("Pruned expired rows: {Counts}.", string.Join(", ", counts.Where(c => c.Value > 0).Select(c => $"{c.Key} {c.Value}")));
        }

        return counts;
    }

    private static async Task<int> PruneAuthorizationsAsync(IdentityDb db, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Consents withdrawn (or revoked with the account's grants): nothing is issued under them any more.
        var total = await DeleteAsync(db, db.Authorizations.IgnoreQueryFilters().Where(a =>
            a.Type == OpenIddictConstants.AuthorizationTypes.Permanent && a.Status != OpenIddictConstants.Statuses.Valid
            && !db.Tokens.IgnoreQueryFilters().Any(t => t.AuthorizationId == a.Id)), cancellationToken);

        // Sign-ins, valid or revoked, by their tenant's lifetimes: one statement per set of lifetimes in use (most
        // tenants keep the defaults), each naming the tenants that have it.
        var lifetimes = await db.Tenants.AsNoTracking()
            .Select(t => new { t.RefreshTokenLifetimeSeconds, t.AccessTokenLifetimeSeconds, t.IdentityTokenLifetimeSeconds, t.AuthorizationCodeLifetimeSeconds })
            .Distinct().ToListAsync(cancellationToken);
        foreach (var l in lifetimes)
        {
            var longest = Tenancy.Tenant.LongestOf(
                l.RefreshTokenLifetimeSeconds, l.AccessTokenLifetimeSeconds, l.IdentityTokenLifetimeSeconds, l.AuthorizationCodeLifetimeSeconds);
            var before = now - longest - Grace; // OpenIddict's dates are UTC DateTimes, ours DateTimeOffsets
            total += await DeleteAsync(db, db.Authorizations.IgnoreQueryFilters().Where(a =>
                a.Type == OpenIddictConstants.AuthorizationTypes.AdHoc
                && (a.RotatedAt != null ? a.RotatedAt < before : a.CreationDate < before.UtcDateTime)
                && db.Tenants.Any(t => t.Id == a.TenantId
                    && t.RefreshTokenLifetimeSeconds == l.RefreshTokenLifetimeSeconds && t.AccessTokenLifetimeSeconds == l.AccessTokenLifetimeSeconds
                    && t.IdentityTokenLifetimeSeconds == l.IdentityTokenLifetimeSeconds && t.AuthorizationCodeLifetimeSeconds == l.AuthorizationCodeLifetimeSeconds)
                && !db.Tokens.IgnoreQueryFilters().Any(t => t.AuthorizationId == a.Id)), cancellationToken);
        }

        return total;
    }

    /// <summary>Audit entries older than their tenant keeps them: one statement per retention in use, naming its tenants.</summary>
    private static async Task<int> PruneAuditAsync(IdentityDb db, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var total = 0;
        foreach (var days in await db.Tenants.AsNoTracking().Where(t => t.AuditRetentionDays > 0).Select(t => t.AuditRetentionDays).Distinct().ToListAsync(cancellationToken))
        {
            var before = now - TimeSpan.FromDays(days);
            total += await DeleteAsync<Audit.AuditEvent, long>(db, db.Set<Audit.AuditEvent>().IgnoreQueryFilters().Where(e =>
                e.Time < before && db.Tenants.Any(t => t.Id == e.TenantId && t.AuditRetentionDays == days)), cancellationToken);
        }

        return total;
    }

    private static Task<int> DeleteAsync<T>(IdentityDb db, IQueryable<T> rows, CancellationToken cancellationToken)
        where T : class => DeleteAsync<T, Guid>(db, rows, cancellationToken);

    /// <summary>
    /// Deletes the rows a query selects, <see cref="Batch"/> at a time (their ids read, then deleted by id: the
    /// providers translate no <c>Take</c> before <c>ExecuteDelete</c>), each batch taking its turn as a write.
    /// </summary>
    private static async Task<int> DeleteAsync<T, TKey>(IdentityDb db, IQueryable<T> rows, CancellationToken cancellationToken)
        where T : class
    {
        var key = db.Model.FindEntityType(typeof(T))!.FindPrimaryKey()!.Properties.Single().Name;
        var total = 0;
        int deleted;
        do
        {
            var ids = await rows.Select(r => EF.Property<TKey>(r, key)).Take(Batch).ToListAsync(cancellationToken);
            deleted = ids.Count == 0 ? 0 : await db.InTurnAsync(c => db.Set<T>().IgnoreQueryFilters().Where(r => ids.Contains(EF.Property<TKey>(r, key))).ExecuteDeleteAsync(c), cancellationToken);
            total += deleted;
        }
        while (deleted == Batch);

        return total;
    }
}
