using System.Globalization;
using System.Security.Claims;
using IdentityService.Data;
using IdentityService.Users;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
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
internal static class TokenFamilies
{
    /// <summary>The private claim of a refresh token that holds its generation in the family.</summary>
    public const string GenerationClaim = "gen";

    private const string NextGenerationProperty = "IdentityService.TokenFamily.NextGeneration";

    /// <summary>Set while a refresh grant's family is checked at sign-in, by the UPDATE that moves it on, not at validation.</summary>
    private const string CheckedAtSignInProperty = "IdentityService.TokenFamily.CheckedAtSignIn";

    /// <summary>Set when the token endpoint ran a refresh's family UPDATE with its user read (<see cref="FindUserAsync"/>): what it did.</summary>
    private const string MovedWithUserReadProperty = "IdentityService.TokenFamily.MovedWithUserRead";

    /// <summary>
    /// The user of a code or refresh grant, at the token endpoint (null when the user is gone). A refresh whose family is
    /// checked at sign-in, on PostgreSQL, also moves its family on here, in the same round trip to the database as the
    /// read (<see cref="FamilyAdvances.ReadUserAndAdvanceAsync"/>); <see cref="AdvanceGeneration"/> then takes that
    /// UPDATE's outcome instead of running it, and goes on exactly as it would have from it (a retry within the leeway,
    /// a reuse, a revoked sign-in). The family moves before the sign-in rather than in it: a grant whose user is gone
    /// moves a family whose tokens no user can use, and a failure after the UPDATE leaves the presented token one
    /// generation behind, as a failure while the tokens were made did before (a retry within the leeway works).
    /// On SQLite (group commit) and elsewhere, the user is read alone and the family moves at sign-in.
    /// </summary>
    internal static async Task<UserProfile?> FindUserAsync(HttpContext context, IdentityDb db, ClaimsPrincipal granted)
    {
        var subject = granted.GetClaim(Claims.Subject);
        var transaction = context.Features.Get<OpenIddictServerAspNetCoreFeature>()?.Transaction;
        if (db is not PostgreSqlIdentityDb
            || transaction?.GetProperty<object>(CheckedAtSignInProperty) is not true
            || !IsFamilyToken(granted)
            || !Guid.TryParse(subject, out var userId)
            || GenerationOf(granted) is not { } generation
            || !Guid.TryParse(granted.GetAuthorizationId(), out var id))
        {
            return await UserProfiles.FindAsync(db, subject, context.RequestAborted);
        }

        var services = context.RequestServices;
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var (user, moved) = await services.GetRequiredService<FamilyAdvances>().ReadUserAndAdvanceAsync(
            db, userId, id, generation, generation + 1, now, NewConcurrencyStamp(), context.RequestAborted);
        transaction.SetProperty(MovedWithUserReadProperty, new MovedWithUserRead(id, generation, moved));
        return user;
    }

    /// <summary>
    /// A new concurrency token for a family the refresh moves on, in the GUID form OpenIddict writes. It must differ from
    /// the one it replaces, so that a concurrent writer of the row sees the change, and is never shown to anyone: drawn
    /// from <see cref="Random.Shared"/>, not from the system's random source that <see cref="Guid.NewGuid"/> reads
    /// with a system call on every call here (0.5% of a refresh's samples in a perf profile on PostgreSQL).
    /// </summary>
    private static string NewConcurrencyStamp()
    {
        Span<byte> bytes = stackalloc byte[16];
        Random.Shared.NextBytes(bytes);
        return new Guid(bytes).ToString();
    }

    /// <summary>What <see cref="FindUserAsync"/>'s UPDATE did to which family, from which generation.</summary>
    private sealed record MovedWithUserRead(Guid Family, int Generation, int Moved);

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
    /// A refresh moves the family on, before any token is made: one UPDATE whose WHERE holds the authorization's
    /// concurrency token, so of two requests with the same refresh token only one wins. A code exchange gives the
    /// family's current generation (0): the code's own row makes it single-use (OpenIddict redeems it, and of two
    /// racing exchanges only one redeems it).
    /// </summary>
    internal sealed class AdvanceGeneration : IOpenIddictServerHandler<ProcessSignInContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
                .UseScopedHandler<AdvanceGeneration>()
                .SetOrder(OpenIddictServerHandlers.RedeemTokenEntry.Descriptor.Order + 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ProcessSignInContext context)
        {
            if (context.EndpointType is not OpenIddictServerEndpointType.Token
                || !(context.Request.IsAuthorizationCodeGrantType() || context.Request.IsRefreshTokenGrantType()))
            {
                return;
            }

            var authentication = context.Transaction.GetProperty<ProcessAuthenticationContext>(typeof(ProcessAuthenticationContext).FullName!)
                ?? throw new InvalidOperationException("The grant was not authenticated.");
            var presented = context.Request.IsAuthorizationCodeGrantType() ? authentication.AuthorizationCodePrincipal : authentication.RefreshTokenPrincipal;
            if (presented?.GetAuthorizationId() is not { Length: > 0 } authorizationId)
            {
                throw new InvalidOperationException("A code or refresh token without a family was accepted.");
            }

            if (context.IsRejected)
            {
                // OpenIddict refused to redeem the code's row (another exchange won): nothing is issued.
                return;
            }

            var services = context.Transaction.RequestServices();
            if (context.Transaction.GetProperty<object>(CheckedAtSignInProperty) is true)
            {
                await AdvanceCheckedAsync(context, services, authorizationId, presented);
                return;
            }

            var authorizations = services.GetRequiredService<IOpenIddictAuthorizationManager>();
            if (await authorizations.FindByIdAsync(authorizationId, context.CancellationToken) is not TenantAuthorization family)
            {
                context.Reject(Errors.InvalidGrant, "The grant is no longer valid.");
                return;
            }

            if (context.Request.IsAuthorizationCodeGrantType())
            {
                context.Transaction.SetProperty(NextGenerationProperty, (object)family.TokenGeneration);
                return;
            }

            var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
            // A refresh token issued with a row before families existed: OpenIddict redeemed its row; the family moves on from where it is.
            var generation = IsFamilyToken(presented) ? GenerationOf(presented) : family.TokenGeneration;
            if (generation is { } g && g != family.TokenGeneration && IsWithinLeeway(context.Options, family, g, now))
            {
                // The token just rotated away, within the leeway: the client gets the live generation again.
                context.Transaction.SetProperty(NextGenerationProperty, (object)family.TokenGeneration);
                return;
            }

            var db = services.GetRequiredService<IdentityDb>();
            family.TokenGeneration++;
            family.RotatedAt = now;
            family.ConcurrencyToken = NewConcurrencyStamp();
            try
            {
                await db.SaveChangesAsync(context.CancellationToken);
            }
            catch (DbUpdateConcurrencyException)
            {
                // Another request moved the family (or revoked it) since this one read it: this token was used twice at once.
                var entry = db.Entry(family);
                await entry.ReloadAsync(context.CancellationToken);
                if (entry.State is EntityState.Detached || family.Status != Statuses.Valid || generation is not { } used || !IsWithinLeeway(context.Options, family, used, now))
                {
                    await services.GetRequiredService<IOpenIddictTokenManager>().RevokeByAuthorizationIdAsync(authorizationId, context.CancellationToken);
                    context.Reject(Errors.InvalidGrant, "The refresh token has already been redeemed.");
                    return;
                }
            }

            context.Transaction.SetProperty(NextGenerationProperty, (object)family.TokenGeneration);
        }

        /// <summary>
        /// A refresh with a family token: one UPDATE moves the family on if it is live and at the token's
        /// generation. If it is not, the family is read to tell why: revoked or gone (refused), the token just
        /// rotated away within the leeway (the live generation again), or an older token (a reuse: the family is
        /// revoked). Of two requests racing with one token, the database lets one UPDATE through.
        /// </summary>
        private static async Task AdvanceCheckedAsync(ProcessSignInContext context, IServiceProvider services, string authorizationId, ClaimsPrincipal presented)
        {
            if (GenerationOf(presented) is not { } generation || !Guid.TryParse(authorizationId, out var id))
            {
                context.Reject(Errors.InvalidGrant, "The refresh token is not valid.");
                return;
            }

            var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
            var next = generation + 1;
            int moved;
            if (context.Transaction.GetProperty<MovedWithUserRead>(MovedWithUserReadProperty) is { } early)
            {
                // The token endpoint ran this UPDATE with the user read: the same family, from the same generation.
                if (early.Family != id || early.Generation != generation)
                {
                    throw new InvalidOperationException("The family moved with the user read is not the presented token's.");
                }

                moved = early.Moved;
            }
            else
            {
                var db = services.GetRequiredService<IdentityDb>();
                moved = await services.GetRequiredService<FamilyAdvances>().AdvanceAsync(db, id, generation, next, now, NewConcurrencyStamp(), context.CancellationToken);
            }

            if (moved == 1)
            {
                context.Transaction.SetProperty(NextGenerationProperty, (object)next);
                return;
            }

            var family = await services.GetRequiredService<IOpenIddictAuthorizationManager>().FindByIdAsync(authorizationId, context.CancellationToken) as TenantAuthorization;
            if (family is null || family.Status != Statuses.Valid)
            {
                context.Reject(Errors.InvalidGrant, "The refresh token is no longer valid.");
                return;
            }

            if (IsWithinLeeway(context.Options, family, generation, now))
            {
                context.Transaction.SetProperty(NextGenerationProperty, (object)family.TokenGeneration);
                return;
            }

            if (generation < family.TokenGeneration)
            {
                await RevokeOnReuseAsync(services, context.Logger, authorizationId, generation, family.TokenGeneration, context.CancellationToken);
                context.Reject(Errors.InvalidGrant, "The refresh token has already been redeemed.");
                return;
            }

            context.Reject(Errors.InvalidGrant, "The refresh token is not valid.");
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
