using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// Access tokens are issued without a row in the token store: the write is the largest cost of a grant, and
/// nothing needs the row. They stay revocable: a revocation puts their <c>jti</c> on the tenant's revoked list
/// until they expire, and every validation by this service (introspection, userinfo, the management API) checks
/// that list; a token issued to a person also carries its authorization's id, which OpenIddict checks on every
/// validation, so revoking the authorization (refresh-token reuse, sign-out everywhere, a deleted user) still
/// kills its access tokens at once.
/// </summary>
internal static class RowlessAccessTokens
{
    public static OpenIddictServerBuilder AddRowlessAccessTokens(this OpenIddictServerBuilder builder) => builder
        .AddEventHandler(SkipTokenRow.Descriptor)
        .AddEventHandler(RevokeByTokenId.Descriptor)
        .AddEventHandler(RejectRevoked.Descriptor);

    internal static bool IsRowless(System.Security.Claims.ClaimsPrincipal? principal) =>
        principal is not null
        && string.IsNullOrEmpty(principal.GetTokenId())
        && principal.GetTokenType() == TokenTypeIdentifiers.AccessToken
        && !string.IsNullOrEmpty(principal.GetClaim(Claims.JwtId));

    /// <summary>
    /// No token row for an access token, nor for an ID token: nothing ever reads an ID token's row (an
    /// id_token_hint is checked by its signature), and each row is a write per grant.
    /// </summary>
    internal sealed class SkipTokenRow : IOpenIddictServerHandler<GenerateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
                .UseSingletonHandler<SkipTokenRow>()
                .SetOrder(OpenIddictServerHandlers.Protection.AttachSecurityCredentials.Descriptor.Order + 2)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(GenerateTokenContext context)
        {
            if (context.TokenType is TokenTypeIdentifiers.IdentityToken or TokenTypeIdentifiers.AccessToken)
            {
                context.CreateTokenEntry = false;
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Revocation (RFC 7009) of a row-less access token: onto the revoked list.</summary>
    internal sealed class RevokeByTokenId : IOpenIddictServerHandler<HandleRevocationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
                .UseScopedHandler<RevokeByTokenId>()
                .SetOrder(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(HandleRevocationRequestContext context)
        {
            var principal = context.GenericTokenPrincipal;
            if (!IsRowless(principal))
            {
                return;
            }

            // RFC 7009: a client revokes only the tokens issued to it. OpenIddict checks this only for tokens that name
            // an audience; a row-less token names its client, and another client's request leaves it alone, answered
            // as any token that cannot be revoked (200, nothing said).
            if (!string.Equals(principal!.GetClaim(Claims.ClientId), context.Request.ClientId, StringComparison.Ordinal))
            {
                context.Reject(Errors.InvalidToken, "The token was not issued to this client.");
                return;
            }

            var revoked = context.Transaction.RequestServices().GetRequiredService<RevokedTokens>();
            var expires = principal!.GetExpirationDate() ?? DateTimeOffset.MaxValue;
            await revoked.RevokeAsync(principal.GetClaim(Claims.JwtId)!, expires, context.CancellationToken);

            // RFC 7009: 200 with no body. The built-in handler, which needs a row, does not run.
            context.HandleRequest();
        }
    }

    /// <summary>A row-less access token on the revoked list is refused like any revoked token.</summary>
    internal sealed class RejectRevoked : IOpenIddictServerHandler<ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
                .UseScopedHandler<RejectRevoked>()
                .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order + 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ValidateTokenContext context)
        {
            if (!IsRowless(context.Principal))
            {
                return;
            }

            // A row would have given OpenIddict the authorization's id; the token carries it: with it set,
            // OpenIddict's own authorization check (ValidateAuthorizationEntry, later) refuses the token once
            // its sign-in was revoked.
            if (string.IsNullOrEmpty(context.AuthorizationId) && context.Principal!.GetAuthorizationId() is { Length: > 0 } authorizationId)
            {
                context.AuthorizationId = authorizationId;
            }

            var services = context.Transaction.RequestServices();
            if (await services.GetRequiredService<RevokedTokens>().IsRevokedAsync(context.Principal!.GetClaim(Claims.JwtId)!, context.CancellationToken)
                || !await IssuedToLiveClientAsync(services, context.Principal!.GetClaim(Claims.ClientId), context.Principal!.GetClaim(Claims.IssuedAt), context.CancellationToken))
            {
                context.Reject(Errors.InvalidToken, "The token was revoked.");
            }
        }
    }

    /// <summary>
    /// A deleted client's row-less tokens die with it, as tokens with rows do with their rows, and stay dead when a
    /// client is made again under the same id (deleting and re-creating a client whose secret leaked must not bring
    /// back the tokens issued to the old one): the token must be issued (<c>iat</c>, whole seconds) no earlier than
    /// the second the client it names was created.
    /// </summary>
    internal static async Task<bool> IssuedToLiveClientAsync(IServiceProvider services, string? clientId, string? issuedAt, CancellationToken cancellationToken) =>
        clientId is not null && long.TryParse(issuedAt, out var iat)
        && await services.GetRequiredService<IOpenIddictApplicationManager>().FindByClientIdAsync(clientId, cancellationToken) is TenantApplication client
        && iat >= client.CreatedAt.ToUnixTimeSeconds();
}
