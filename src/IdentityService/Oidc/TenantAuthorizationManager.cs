using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace IdentityService.Oidc;

/// <summary>
/// OpenIddict's authorization manager, where a sign-in's authorization keeps the browser session it was made in: the
/// <c>sid</c> of the principal OpenIddict creates it for (<see cref="TenantAuthorization.SessionId"/>), so that the
/// end of that session reaches the clients signed in with it (<see cref="BackchannelLogout"/>) and ends those of its
/// sign-ins that were not given offline access (<see cref="EndSessionAsync"/>). Revoking a user's sign-ins (all, or
/// with one client) tells their clients first.
/// </summary>
internal sealed class TenantAuthorizationManager(
    IOpenIddictAuthorizationCache<TenantAuthorization> cache,
    ILogger<OpenIddictAuthorizationManager<TenantAuthorization>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictAuthorizationStore<TenantAuthorization> store,
    IServiceProvider services)
    : OpenIddictAuthorizationManager<TenantAuthorization>(cache, logger, options, store)
{
    // Resolved when sign-ins are revoked only: a code exchange or a refresh, which resolve this manager, make none.
    private BackchannelLogout Logouts => services.GetRequiredService<BackchannelLogout>();

    public override async ValueTask<long> RevokeBySubjectAsync(string subject, CancellationToken cancellationToken = default)
    {
        await Logouts.GrantsEndingAsync(subject, applicationId: null, cancellationToken);
        return await base.RevokeBySubjectAsync(subject, cancellationToken);
    }

    /// <summary>A user's sign-ins with one client (the person or an admin withdrew the app's access): that client is told.</summary>
    public override async ValueTask<long> RevokeAsync(string? subject, string? client, string? status, string? type, CancellationToken cancellationToken = default)
    {
        if (subject is not null && Guid.TryParse(client, out var id))
        {
            await Logouts.GrantsEndingAsync(subject, id, cancellationToken);
        }

        return await base.RevokeAsync(subject, client, status, type, cancellationToken);
    }

    /// <summary>
    /// The person signed out of the browser session <paramref name="sessionId"/>: the clients signed in with it are told
    /// (back-channel logout), and its sign-ins without <c>offline_access</c> are revoked, so their access tokens are
    /// refused from now on (userinfo, introspection, token exchange) rather than at their expiry. A sign-in given
    /// offline access outlives the session, as OpenID Connect says, with its refresh and access tokens.
    /// </summary>
    /// <returns>The clients told.</returns>
    public async Task<IReadOnlyList<string>> EndSessionAsync(string subject, string sessionId, CancellationToken cancellationToken)
    {
        var told = await Logouts.SessionEndedAsync(subject, sessionId, cancellationToken);
        var db = services.GetRequiredService<Data.IdentityDb>();
        var offline = "\"" + OpenIddictConstants.Scopes.OfflineAccess + "\"";
        await db.InTurnAsync(c => db.Authorizations
            .Where(a => a.Subject == subject && a.SessionId == sessionId && a.Status == OpenIddictConstants.Statuses.Valid
                && (a.Scopes == null || !a.Scopes.Contains(offline)))
            .ExecuteUpdateAsync(a => a.SetProperty(x => x.Status, OpenIddictConstants.Statuses.Revoked), c), cancellationToken);
        return told;
    }

    public override async ValueTask PopulateAsync(TenantAuthorization authorization, OpenIddictAuthorizationDescriptor descriptor, CancellationToken cancellationToken = default)
    {
        await base.PopulateAsync(authorization, descriptor, cancellationToken);
        if (descriptor.Principal?.GetClaim(SignIn.Session.SessionIdClaim) is { Length: > 0 and <= 64 } sessionId)
        {
            authorization.SessionId = sessionId;
        }
    }
}
