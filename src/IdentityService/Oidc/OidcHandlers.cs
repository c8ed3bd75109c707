using Microsoft.AspNetCore;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>Leaves requests outside any tenant (<c>/api</c>, <c>/health</c>, a bare <c>/connect/token</c>) to the rest of the app.</summary>
internal sealed class SkipRequestsOutsideTenants : IOpenIddictServerHandler<ProcessRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessRequestContext>()
            .UseSingletonHandler<SkipRequestsOutsideTenants>()
            .SetOrder(int.MinValue)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessRequestContext context)
    {
        if (context.Transaction.GetHttpRequest()?.HttpContext.Features.Get<TenantOidcState>() is null)
        {
            context.SkipRequest();
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Picks the tenant's key per token type: ID tokens RS256 (which OpenID Connect requires every provider
/// to support), access tokens the tenant's algorithm (ES256 by default, ten times cheaper to sign).
/// Codes and refresh tokens, which only this service reads, are signed with the tenant's internal HMAC key
/// (a fraction of ES256's cost to sign and to verify) and encrypted with its current encryption key.
/// </summary>
internal sealed class SelectTenantCredentials : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
            .UseSingletonHandler<SelectTenantCredentials>()
            .SetOrder(OpenIddictServerHandlers.Protection.AttachSecurityCredentials.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        var state = context.Transaction.GetHttpRequest()?.HttpContext.Features.Get<TenantOidcState>()
            ?? throw new InvalidOperationException("A token is generated outside any tenant.");
        var keys = state.Keys;
        context.SigningCredentials = context.TokenType switch
        {
            OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.IdentityToken => keys.Rsa,
            OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.AccessToken =>
                state.Tenant.AccessTokenAlgorithm == TenantKeyRing.Rs256 ? keys.Rsa : keys.Ecdsa,
            OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.RefreshToken
                or OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.AuthorizationCode
                or OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.DeviceCode
                or OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.UserCode
                or OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.RequestToken => keys.Internal,
            _ => keys.Ecdsa,
        };
        if (context.EncryptionCredentials is not null)
        {
            context.EncryptionCredentials = keys.Encryption;
        }

        return ValueTask.CompletedTask;
    }
}

internal static class OidcTransactions
{
    /// <summary>The services of the HTTP request an OpenIddict event belongs to (the request's scope: its tenant, its database context).</summary>
    public static IServiceProvider RequestServices(this OpenIddictServerTransaction transaction) =>
        transaction.GetHttpRequest()?.HttpContext.RequestServices
        ?? throw new InvalidOperationException("An OpenIddict event outside any HTTP request.");
}
