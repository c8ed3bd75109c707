using System.Security.Cryptography;
using IdentityService.Data;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>
/// OpenID Connect Back-Channel Logout 1.0: when sign-ins end at the service, the clients they were made with are told
/// by a signed logout token posted to their <see cref="TenantApplication.BackchannelLogoutUri"/>, so that they end
/// their own sessions too (an app's cookie outlives the access token it was made from).
/// <list type="bullet">
/// <item>A browser session ends (the person signs out, RP-initiated logout): each client signed in with that session
/// (<see cref="TenantAuthorization.SessionId"/>) gets a token with <c>sub</c> and <c>sid</c>.</item>
/// <item>An account's grants are revoked (a password set or reset, signed out everywhere, disabled, deleted, an app's
/// access withdrawn): each client the account had a live sign-in with gets one token per session, and one with
/// <c>sub</c> alone for sign-ins made without a browser session (a device), unless it requires <c>sid</c>.</item>
/// </list>
/// The tokens are signed with the tenant's RS256 key (as its ID tokens, published in its JWKS), typed
/// <c>logout+jwt</c>, for the client alone (<c>aud</c>), live 2 minutes, and carry no <c>nonce</c>. They are sent
/// after the request by <see cref="BackchannelLogoutSender"/>.
/// </summary>
public sealed class BackchannelLogout(
    IdentityDb db, TenantContext tenant, TenantOidcStateCache states, IHttpContextAccessor accessor, IOptions<IssuerOptions> issuer,
    TimeProvider time, BackchannelLogoutSender sender, ILogger<BackchannelLogout> logger)
{
    public const string Event = "http://schemas.openid.net/event/backchannel-logout";

    public const string TokenType = "logout+jwt";

    /// <summary>How long a logout token can be used: long enough for the sender's retries, short for a replay.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(2);

    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    /// <summary>The browser session <paramref name="sessionId"/> of <paramref name="subject"/> ended: its clients are told. Answers their ids.</summary>
    public Task<IReadOnlyList<string>> SessionEndedAsync(string subject, string sessionId, CancellationToken cancellationToken) =>
        TellAsync(subject, db.Authorizations.Where(a => a.SessionId == sessionId && a.Subject == subject && a.Status == Statuses.Valid), cancellationToken);

    /// <summary>
    /// The live sign-ins of <paramref name="subject"/> (with the client <paramref name="applicationId"/> alone when
    /// given) are about to be revoked: their clients are told. Called before the revocation, which it does not do.
    /// </summary>
    public async Task GrantsEndingAsync(string subject, Guid? applicationId, CancellationToken cancellationToken)
    {
        _ = await TellAsync(subject, db.Authorizations.Where(a => a.Subject == subject && a.Status == Statuses.Valid && a.Type == AuthorizationTypes.AdHoc
            && (applicationId == null || a.ApplicationId == applicationId)), cancellationToken);
    }

    /// <summary>Tells each client with a back-channel logout URI, once per session, of the end of <paramref name="ending"/>.</summary>
    private async Task<IReadOnlyList<string>> TellAsync(string subject, IQueryable<TenantAuthorization> ending, CancellationToken cancellationToken)
    {
        var rows = await ending.AsNoTracking()
            .Where(a => a.Application!.BackchannelLogoutUri != null)
            .Select(a => new { a.Application!.ClientId, a.Application.BackchannelLogoutUri, a.Application.BackchannelLogoutSessionRequired, a.SessionId })
            .Distinct().ToListAsync(cancellationToken);
        var signIns = rows.Select(r => new EndedSignIn(r.ClientId!, r.BackchannelLogoutUri!, r.BackchannelLogoutSessionRequired, r.SessionId)).ToList();
        if (signIns.Count == 0)
        {
            return [];
        }

        if (accessor.HttpContext?.Request is not { } request)
        {
            logger.LogWarning("Sign-ins of a user of tenant {Tenant} ended outside a request: their clients were not told.", tenant.Required.Id);
            return [];
        }

        var state = await states.GetAsync(tenant.Required, cancellationToken);
        var iss = issuer.Value.IssuerFor(request, tenant.Required.Id);
        var now = time.GetUtcNow();
        var told = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var signIn in signIns.Where(s => s.SessionId is not null || !s.SessionRequired))
        {
            var token = Create(state.Keys.Rsa, iss, signIn.ClientId, subject, signIn.SessionId, now);
            sender.Enqueue(new BackchannelLogoutSender.Delivery(tenant.Required.Id, signIn.ClientId, signIn.Uri, token, now + Lifetime));
            told.Add(signIn.ClientId);
        }

        return [.. told];
    }

    internal static string Create(SigningCredentials key, string issuer, string clientId, string subject, string? sessionId, DateTimeOffset now)
    {
        var claims = new Dictionary<string, object>
        {
            [Claims.JwtId] = WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(16)),
            [Claims.Subject] = subject,
            ["events"] = new Dictionary<string, object> { [Event] = new Dictionary<string, object>() },
        };
        if (sessionId is not null)
        {
            claims[SignIn.Session.SessionIdClaim] = sessionId;
        }

        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = clientId,
            IssuedAt = now.UtcDateTime,
            Expires = (now + Lifetime).UtcDateTime,
            TokenType = TokenType,
            SigningCredentials = key,
            Claims = claims,
        });
    }

    /// <summary>Names the support in the discovery document: <c>backchannel_logout_supported</c> and <c>backchannel_logout_session_supported</c>.</summary>
    internal sealed class NameSupport : IOpenIddictServerHandler<OpenIddictServerEvents.HandleConfigurationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.HandleConfigurationRequestContext>()
                .UseSingletonHandler<NameSupport>()
                .SetOrder(OpenIddictServerHandlers.Discovery.AttachAdditionalMetadata.Descriptor.Order + 500)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(OpenIddictServerEvents.HandleConfigurationRequestContext context)
        {
            context.Metadata["backchannel_logout_supported"] = true;
            context.Metadata["backchannel_logout_session_supported"] = true;
            return default;
        }
    }

    private sealed record EndedSignIn(string ClientId, string Uri, bool SessionRequired, string? SessionId);
}
