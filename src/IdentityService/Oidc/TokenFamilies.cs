using System.Globalization;
using System.Security.Claims;
using IdentityService.Data;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// Refresh tokens are issued without a token row: a sign-in's authorization (one per sign-in, see
/// <see cref="AuthorizationEndpoint"/>) is their family and keeps the one number that says which of them is live,
/// <see cref="TenantAuthorization.TokenGeneration"/>.
/// <list type="bullet">
/// <item>The refresh token that the code gives is generation 0 (the code itself keeps its row, so it is used once
/// and stays a short reference in the redirect).</item>
/// <item>Each refresh moves the family on by one, in a single conditional UPDATE of the authorization (its
/// concurrency token is in the WHERE), and the new refresh token carries the new number.</item>
/// <item>A refresh token of an older generation is a reuse: the whole family is revoked (the authorization, and
/// with it its access tokens), as OpenIddict does for a redeemed token row. Only the token of the generation just
/// before is still accepted, within the tenant's reuse leeway after the rotation, and then the family does not
/// move again.</item>
/// </list>
/// The tokens stay self-contained and unreadable to anyone else (sealed with a key of the tenant's: <see cref="SealedRefreshTokens"/>).
/// A refresh is one conditional UPDATE of its authorization (live, at the token's generation: moved on by one),
/// where a token row took a read, an update and an insert; only when that UPDATE finds nothing is the
/// authorization read, to tell a revoked sign-in, a retry within the leeway and a reuse apart. Refresh tokens issued with a row before this change still go through OpenIddict's own check
/// of their row, and their successors join the family.
/// </summary>
internal static partial class TokenFamilies
{
    /// <summary>The private claim of a refresh token that holds its generation in the family.</summary>
    public const string GenerationClaim = "gen";

    private const string NextGenerationProperty = "IdentityService.TokenFamily.NextGeneration";

    /// <summary>Set while a refresh grant's family is checked at sign-in, by the UPDATE that moves it on, not at validation.</summary>
    private const string CheckedAtSignInProperty = "IdentityService.TokenFamily.CheckedAtSignIn";

    /// <summary>
    /// A refresh grant at the token endpoint: its family is checked and moved on in one statement when the grant is
    /// signed in (<see cref="AdvanceGeneration"/>), after the client and the token are validated. Elsewhere
    /// (revocation, introspection) a family token is checked against its authorization when it is validated.
    /// </summary>
    private static bool IsCheckedAtSignIn(ValidateTokenContext context) =>
        context.EndpointType is OpenIddictServerEndpointType.Token && context.Request?.IsRefreshTokenGrantType() is true;

    public static OpenIddictServerBuilder AddTokenFamilies(this OpenIddictServerBuilder builder) => builder
        .AddEventHandler(IssueWithoutRow.Descriptor)
        .AddEventHandler(ResolveFamily.Descriptor)
        .AddEventHandler(CheckGeneration.Descriptor)
        .AddEventHandler(AdvanceGeneration.Descriptor)
        .AddEventHandler(RevokeFamily.Descriptor);

    private static bool IsFamilyToken(ClaimsPrincipal? principal) =>
        principal is not null
        && string.IsNullOrEmpty(principal.GetTokenId())
        && principal.GetTokenType() == TokenTypeIdentifiers.RefreshToken;

    private static int? GenerationOf(ClaimsPrincipal principal) =>
        int.TryParse(principal.GetClaim(GenerationClaim), NumberStyles.None, CultureInfo.InvariantCulture, out var generation) ? generation : null;

    /// <summary>Within the tenant's leeway, the refresh token just rotated away still works (a client retrying a lost answer).</summary>
    private static bool IsWithinLeeway(OpenIddictServerOptions options, TenantAuthorization family, int generation, DateTimeOffset now) =>
        generation == family.TokenGeneration - 1
        && options.RefreshTokenReuseLeeway is { } leeway && leeway > TimeSpan.Zero
        && family.RotatedAt is { } rotated && now < rotated + leeway;

    /// <summary>
    /// RFC 6749 section 10.4 and the OAuth security BCP: a rotated refresh token coming back means one of the two
    /// was stolen; the whole family goes (the sign-in's authorization, and with it its access tokens).
    /// </summary>
    private static async Task RevokeOnReuseAsync(IServiceProvider services, ILogger logger, string authorizationId, int generation, int current, CancellationToken cancellationToken)
    {
        await services.GetRequiredService<IOpenIddictTokenManager>().RevokeByAuthorizationIdAsync(authorizationId, cancellationToken);
        logger.LogWarning("A refresh token of generation {Generation} was used again: family {AuthorizationId} (at {Current}) revoked.",
            generation, authorizationId, current);
    }

    /// <summary>A refresh token gets no row: it is self-contained, and carries its generation in the family.</summary>
    internal sealed class IssueWithoutRow : IOpenIddictServerHandler<GenerateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
                .UseSingletonHandler<IssueWithoutRow>()
                .SetOrder(OpenIddictServerHandlers.Protection.AttachSecurityCredentials.Descriptor.Order + 3)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(GenerateTokenContext context)
        {
            if (context.TokenType != TokenTypeIdentifiers.RefreshToken)
            {
                return ValueTask.CompletedTask;
            }

            // Set by AdvanceGeneration on every grant that issues a refresh token (a code or a refresh).
            var generation = context.Transaction.GetProperty<object>(NextGenerationProperty) as int?
                ?? throw new InvalidOperationException("A refresh token is issued outside a token family.");
            context.CreateTokenEntry = false;
            context.IsReferenceToken = false;
            context.PersistTokenPayload = false;
            context.Principal.SetClaim(GenerationClaim, generation.ToString(CultureInfo.InvariantCulture));
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// A row would have given OpenIddict the family's id; the token carries it. With it set, OpenIddict's own
    /// check (ValidateAuthorizationEntry) refuses the token once the sign-in is revoked, and loads the family.
    /// A refresh grant leaves it unset: its family is checked by the UPDATE that moves it on.
    /// </summary>
    internal sealed class ResolveFamily : IOpenIddictServerHandler<ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
                .UseSingletonHandler<ResolveFamily>()
                .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order + 2)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(ValidateTokenContext context)
        {
            if (!IsFamilyToken(context.Principal))
            {
                return ValueTask.CompletedTask;
            }

            if (context.Principal!.GetAuthorizationId() is { Length: > 0 } authorizationId)
            {
                if (IsCheckedAtSignIn(context))
                {
                    context.Transaction.SetProperty(CheckedAtSignInProperty, (object)true);
                }
                else
                {
                    context.AuthorizationId = authorizationId;
                }
            }
            else
            {
                // Every refresh token is issued inside a family: one without is not ours.
                context.Reject(Errors.InvalidToken, "The token is not valid.");
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A refresh token is live only at its family's generation; an older one is a reuse, and revokes the family.</summary>
    internal sealed class CheckGeneration : IOpenIddictServerHandler<ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
                .UseScopedHandler<CheckGeneration>()
                .SetOrder(OpenIddictServerHandlers.Protection.ValidateAuthorizationEntry.Descriptor.Order + 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ValidateTokenContext context)
        {
            if (!IsFamilyToken(context.Principal) || IsCheckedAtSignIn(context))
            {
                return;
            }

            var services = context.Transaction.RequestServices();
            var authorizations = services.GetRequiredService<IOpenIddictAuthorizationManager>();

            // Loaded (and tracked) by ValidateAuthorizationEntry just before: no second query.
            if (await authorizations.FindByIdAsync(context.AuthorizationId!, context.CancellationToken) is not TenantAuthorization family)
            {
                context.Reject(Errors.InvalidToken, "The token is no longer valid.");
                return;
            }

            var generation = GenerationOf(context.Principal!);
            var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
            if (generation == family.TokenGeneration || (generation is { } g && IsWithinLeeway(context.Options, family, g, now)))
            {
                return;
            }

            if (generation is { } older && older < family.TokenGeneration)
            {
                await RevokeOnReuseAsync(services, context.Logger, context.AuthorizationId!, older, family.TokenGeneration, context.CancellationToken);
            }

            context.Reject(Errors.InvalidToken, "The refresh token has already been redeemed.");
        }
    }

    /// <summary>
    /// Revocation (RFC 7009) of a refresh token without a row revokes its family, and so the access tokens of the
    /// same grant, as the RFC asks of a server that can.
    /// </summary>
    internal sealed class RevokeFamily : IOpenIddictServerHandler<HandleRevocationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
                .UseScopedHandler<RevokeFamily>()
                .SetOrder(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(HandleRevocationRequestContext context)
        {
            var principal = context.GenericTokenPrincipal;
            if (!IsFamilyToken(principal) || principal!.GetAuthorizationId() is not { Length: > 0 } authorizationId)
            {
                return;
            }

            await context.Transaction.RequestServices().GetRequiredService<IOpenIddictTokenManager>().RevokeByAuthorizationIdAsync(authorizationId, context.CancellationToken);
            context.HandleRequest();
        }
    }
}
