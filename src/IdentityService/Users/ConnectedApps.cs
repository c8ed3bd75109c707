using System.Text.Json;
using IdentityService.Data;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace IdentityService.Users;

/// <summary>An app with access to an account: the scopes the person consented to, and its sign-ins still live.</summary>
public sealed record ConnectedApp(
    string ClientId, string Name, bool FirstParty, IReadOnlyList<string> ConsentedScopes, int SignIns, DateTimeOffset Since, DateTimeOffset LastUsed);

/// <summary>
/// The apps that have access to an account, for the person (<c>/account/apps</c>) and for admins
/// (<c>/api/v1/tenants/{tenant}/users/{id}/apps</c>): each client with a consent given or a sign-in whose tokens
/// may still be valid. Removing an app's access revokes both, so its refresh tokens and the access tokens of those
/// sign-ins stop working at once, and a third-party app asks for consent again.
/// </summary>
public sealed class ConnectedApps(IdentityDb db, IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens, TenantContext tenant, TimeProvider time)
{
    public async Task<IReadOnlyList<ConnectedApp>> ListAsync(AppUser user, CancellationToken cancellationToken)
    {
        var subject = user.Id.ToString();
        var rows = await db.Authorizations.AsNoTracking()
            .Where(a => a.Subject == subject && a.Status == OpenIddictConstants.Statuses.Valid && a.ApplicationId != null)
            .Select(a => new { ApplicationId = a.ApplicationId!.Value, a.Type, a.Scopes, a.CreationDate, a.RotatedAt })
            .ToListAsync(cancellationToken);

        // A sign-in counts while a token of it may still be valid (the pruner deletes it a day after that).
        var liveSince = time.GetUtcNow() - tenant.Required.LongestTokenLifetime;
        var live = rows.Select(r =>
        {
            // OpenIddict keeps its dates as UTC DateTimes; the family's last rotation is ours.
            var created = new DateTimeOffset(DateTime.SpecifyKind(r.CreationDate ?? default, DateTimeKind.Utc));
            return new { r.ApplicationId, Consent = r.Type == OpenIddictConstants.AuthorizationTypes.Permanent, r.Scopes, Created = created, Used = r.RotatedAt ?? created };
        }).Where(r => r.Consent || r.Used > liveSince).ToList();
        var ids = live.Select(r => r.ApplicationId).Distinct().ToList();
        var clients = await db.Applications.AsNoTracking().Where(a => ids.Contains(a.Id))
            .Select(a => new { a.Id, a.ClientId, a.DisplayName, a.FirstParty }).ToListAsync(cancellationToken);

        return clients.Select(c =>
        {
            var of = live.Where(r => r.ApplicationId == c.Id).ToList();
            var scopes = of.Where(r => r.Consent && r.Scopes is not null).SelectMany(r => JsonSerializer.Deserialize<string[]>(r.Scopes!) ?? [])
                .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            return new ConnectedApp(c.ClientId!, c.DisplayName ?? c.ClientId!, c.FirstParty, scopes, of.Count(r => !r.Consent),
                of.Min(r => r.Created), of.Max(r => r.Used));
        }).OrderBy(a => a.Name, StringComparer.CurrentCultureIgnoreCase).ToList();
    }

    /// <summary>
    /// Revokes the account's consents and sign-ins at one client. Answers how many were revoked: 0 when the client is
    /// unknown or had no access.
    /// </summary>
    public async Task<long> RevokeAsync(AppUser user, string clientId, CancellationToken cancellationToken)
    {
        var application = await db.Applications.AsNoTracking().Where(a => a.ClientId == clientId).Select(a => (Guid?)a.Id).FirstOrDefaultAsync(cancellationToken);
        if (application is not { } id)
        {
            return 0;
        }

        var subject = user.Id.ToString();
        await tokens.RevokeAsync(subject, id.ToString(), status: null, type: null, cancellationToken);
        return await authorizations.RevokeAsync(subject, id.ToString(), OpenIddictConstants.Statuses.Valid, type: null, cancellationToken);
    }
}
