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
/// How a grant moves its family on (<see cref="TokenFamilies"/>): at sign-in (<see cref="AdvanceGeneration"/>), or, for a
/// refresh on PostgreSQL, at the token endpoint in one round trip with the user's read (<see cref="FindUserAsync"/>).
/// </summary>
internal static partial class TokenFamilies
{
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
            var firstOfFamily = context.Request.IsAuthorizationCodeGrantType() || context.Request.IsDeviceCodeGrantType();
            if (context.EndpointType is not OpenIddictServerEndpointType.Token || !(firstOfFamily || context.Request.IsRefreshTokenGrantType()))
            {
                return;
            }

            var authentication = context.Transaction.GetProperty<ProcessAuthenticationContext>(typeof(ProcessAuthenticationContext).FullName!)
                ?? throw new InvalidOperationException("The grant was not authenticated.");
            var presented = context.Request.IsAuthorizationCodeGrantType() ? authentication.AuthorizationCodePrincipal
                : context.Request.IsDeviceCodeGrantType() ? authentication.DeviceCodePrincipal
                : authentication.RefreshTokenPrincipal;
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

            if (firstOfFamily)
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
}
