using OpenIddict.Abstractions;
using Microsoft.Extensions.Options;
using OpenIddict.Core;

namespace IdentityService.Oidc;

/// <summary>
/// OpenIddict's application manager, plus secret rotation with an overlap window: after a rotation the
/// previous secret keeps working until <see cref="TenantApplication.PreviousSecretExpiresAt"/>.
/// </summary>
internal sealed class TenantApplicationManager(
    IOpenIddictApplicationCache<TenantApplication> cache,
    ILogger<OpenIddictApplicationManager<TenantApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TenantApplication> store,
    TimeProvider time)
    : OpenIddictApplicationManager<TenantApplication>(cache, logger, options, store)
{
    public override async ValueTask<bool> ValidateClientSecretAsync(TenantApplication application, string secret, CancellationToken cancellationToken = default)
    {
        if (await base.ValidateClientSecretAsync(application, secret, cancellationToken))
        {
            return true;
        }

        return application.PreviousClientSecret is { } previous
            && application.PreviousSecretExpiresAt > time.GetUtcNow()
            && await ValidateClientSecretAsync(secret, previous, cancellationToken);
    }

    /// <summary>The stored form of a secret, for keeping a previous one during rotation.</summary>
    public ValueTask<string> HashSecretAsync(string secret, CancellationToken cancellationToken) =>
        ObfuscateClientSecretAsync(secret, cancellationToken);
}
