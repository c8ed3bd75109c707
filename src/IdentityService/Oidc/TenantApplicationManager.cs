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
    VerifiedSecretCache verified,
    TimeProvider time)
    : OpenIddictApplicationManager<TenantApplication>(cache, logger, options, store)
{
    public override async ValueTask<bool> ValidateClientSecretAsync(TenantApplication application, string secret, CancellationToken cancellationToken = default)
    {
        if (await MatchesAsync(application, secret, application.ClientSecret, cancellationToken))
        {
            return true;
        }

        return application.PreviousClientSecret is { } previous
            && application.PreviousSecretExpiresAt > time.GetUtcNow()
            && await MatchesAsync(application, secret, previous, cancellationToken);
    }

    /// <summary>One slow hash per client, secret and stored hash every few minutes, not one per request.</summary>
    private async ValueTask<bool> MatchesAsync(TenantApplication application, string secret, string? storedHash, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(storedHash) || application.ClientType != OpenIddictConstants.ClientTypes.Confidential)
        {
            return false;
        }

        if (verified.IsVerified(application.TenantId, application.ClientId!, secret, storedHash))
        {
            return true;
        }

        if (!await ValidateClientSecretAsync(secret, storedHash, cancellationToken))
        {
            return false;
        }

        verified.Remember(application.TenantId, application.ClientId!, secret, storedHash);
        return true;
    }

    /// <summary>The stored form of a secret, for keeping a previous one during rotation.</summary>
    public ValueTask<string> HashSecretAsync(string secret, CancellationToken cancellationToken) =>
        ObfuscateClientSecretAsync(secret, cancellationToken);
}
