using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace IdentityService.Oidc;

/// <summary>
/// OpenIddict's authorization manager, where a sign-in's authorization keeps the browser session it was made in: the
/// <c>sid</c> of the principal OpenIddict creates it for (<see cref="TenantAuthorization.SessionId"/>), so that the
/// end of that session reaches the clients signed in with it (<see cref="BackchannelLogout"/>). Revoking a user's
/// sign-ins (all, or with one client) tells their clients first.
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

    public override async ValueTask PopulateAsync(TenantAuthorization authorization, OpenIddictAuthorizationDescriptor descriptor, CancellationToken cancellationToken = default)
    {
        await base.PopulateAsync(authorization, descriptor, cancellationToken);
        if (descriptor.Principal?.GetClaim(SignIn.Session.SessionIdClaim) is { Length: > 0 and <= 64 } sessionId)
        {
            authorization.SessionId = sessionId;
        }
    }
}
