using System.Collections.Immutable;
using System.Security.Claims;
using System.Text.Json.Nodes;
using IdentityService.Data;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.IdentityModel.JsonWebTokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// OAuth 2.0 Token Exchange (RFC 8693), for an API that calls another on behalf of the person whose access token it
/// received: its back end, a confidential client with the token-exchange grant, posts that token (<c>subject_token</c>,
/// an access token of this tenant, nothing else) and names the API it calls (<c>resource</c> or <c>audience</c>); it
/// gets an access token for that API alone, with the person as subject, itself as <c>client_id</c>, and an
/// <c>act</c> claim naming it (nested over the subject token's own <c>act</c>, so a chain of calls stays visible).
/// <list type="bullet">
/// <item>Which tokens a client may exchange: those issued for an API it serves (its <c>servedResources</c>, <see cref="ResourceServers"/>),
/// and, as OpenIddict allows, those issued to it or naming it as audience. Any other token is refused
/// (<c>invalid_grant</c>): a client that is handed another API's token cannot turn it into one of its own.</item>
/// <item>Nothing grows: the scopes asked for must be among the subject token's and the client's (none asked: the
/// subject token's the client may ask for, without <c>offline_access</c>); the API must be one of the tenant's and allowed to the client; no refresh or ID
/// token is issued; the token expires no later than the subject token.</item>
/// <item>It stays revocable with the sign-in it came from: it carries the subject token's authorization, so signing
/// the person out everywhere, disabling or deleting them ends it as it ends the subject token.</item>
/// <item>Only a person's token is exchanged: a client's own (client_credentials) token is refused, and so are actor
/// tokens (delegation to a third party named by its own token is not offered).</item>
/// </list>
/// </summary>
internal static class TokenExchange
{
    /// <summary>The actor claim of RFC 8693 (section 4.1).</summary>
    public const string ActClaim = "act";

    public static OpenIddictServerBuilder AddTokenExchange(this OpenIddictServerBuilder builder) => builder
        .AllowTokenExchangeFlow()
        .Configure(options =>
        {
            options.SubjectTokenTypes.Clear();
            options.SubjectTokenTypes.Add(TokenTypeIdentifiers.AccessToken);
            options.ActorTokenTypes.Clear();
            // The audience parameter (which OpenIddict takes on exchanges alone) names an API resource as resource
            // does, and is checked as one by HandleAsync: against the tenant's API resources and the client's resource
            // permissions, not against a list of audiences and permissions of their own.
            options.DisableAudienceValidation = true;
            options.IgnoreAudiencePermissions = true;
        })
        .RemoveEventHandler(OpenIddictServerHandlers.Exchange.ValidateAuthorizedParty.Descriptor)
        .AddEventHandler(ValidateAuthorizedParty.Descriptor);

    /// <summary>
    /// OpenIddict's check that the client may use the token it presents, with this service's rule for an exchange's
    /// subject token added: one issued for an API the client serves is the client's to exchange. Other grants are
    /// checked by OpenIddict's handler as before.
    /// </summary>
    internal sealed class ValidateAuthorizedParty : IOpenIddictServerHandler<ValidateTokenRequestContext>
    {
        private static readonly OpenIddictServerHandlers.Exchange.ValidateAuthorizedParty BuiltIn = new();

        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
                .UseSingletonHandler<ValidateAuthorizedParty>()
                .SetOrder(OpenIddictServerHandlers.Exchange.ValidateAuthorizedParty.Descriptor.Order)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ValidateTokenRequestContext context)
        {
            if (!context.Request.IsTokenExchangeGrantType())
            {
                await BuiltIn.HandleAsync(context);
                return;
            }

            var subject = context.SubjectTokenPrincipal;
            var clientId = context.ClientId;
            if (subject is null || string.IsNullOrEmpty(clientId))
            {
                context.Reject(Errors.InvalidGrant, "The subject token cannot be exchanged by this client.");
                return;
            }

            if (!await ResourceServers.MayUseAsync(context.Transaction, clientId, subject, context.CancellationToken))
            {
                context.Reject(Errors.InvalidGrant, "The subject token was not issued for an API this client serves (its servedResources).");
            }
        }
    }

    /// <summary>The token endpoint's answer to an exchange OpenIddict has validated: the new access token's principal.</summary>
    public static async Task<IResult> HandleAsync(HttpContext context, OpenIddictRequest request, IOpenIddictApplicationManager applications, Tenancy.Tenant tenant)
    {
        var subject = (await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal;
        var db = context.RequestServices.GetRequiredService<IdentityDb>();
        var user = subject is null ? null : await Users.UserProfiles.FindAsync(db, subject.GetClaim(Claims.Subject), context.RequestAborted);
        // A person's token carries the authorization of their sign-in; a client's own (client_credentials) token has
        // none, whatever its subject says (a client id may be written like a user's id).
        if (subject is null || user is null || string.IsNullOrEmpty(subject.GetAuthorizationId()))
        {
            return AuthorizationEndpoint.Forbid(Errors.InvalidGrant, "The subject token is not a person's (only an access token issued to a person is exchanged).");
        }

        var held = subject.GetScopes();
        var asked = request.GetScopes();
        if (asked.Any(scope => !held.Contains(scope)))
        {
            return AuthorizationEndpoint.Forbid(Errors.InvalidScope, "A scope asked for is not one of the subject token's.");
        }

        var application = await applications.FindByClientIdAsync(request.ClientId!, context.RequestAborted)
            ?? throw new InvalidOperationException("OpenIddict authenticated a client that does not exist.");

        // Scopes asked for were checked against the client's permissions by OpenIddict; none asked: the subject token's
        // that the client may ask for itself, so an exchange never hands it one it could not ask for (manage, say).
        var scopes = asked.IsEmpty ? await MayAskAsync(applications, application, held, context.RequestAborted) : asked;
        scopes = scopes.Remove(Scopes.OfflineAccess);
        var named = request.GetResources().Concat(request.GetAudiences()).Distinct(StringComparer.Ordinal).ToList();

        // Resources were checked against the client's permissions already (ResourcePermissions); audiences, which
        // OpenIddict does not check here, are checked as resources.
        foreach (var target in request.GetAudiences())
        {
            if (!await applications.HasPermissionAsync(application, Permissions.Prefixes.Resource + target, context.RequestAborted))
            {
                return AuthorizationEndpoint.Forbid(Errors.InvalidTarget, "An audience is not an API this client may ask for tokens for.");
            }
        }

        var resources = Clients.ResourcesFor(named, application, scopes, tenant);
        if (resources is null || resources.Count == 0)
        {
            return AuthorizationEndpoint.Forbid(Errors.InvalidTarget, resources is null
                ? "A resource is not one of this tenant's API resources."
                : "Name the API the token is for (resource or audience), or give the client defaultAudiences.");
        }

        DateTimeOffset? authTime = long.TryParse(subject.GetClaim(Claims.AuthenticationTime), out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;
        var principal = await context.RequestServices.GetRequiredService<UserClaims>().CreatePrincipalAsync(user, scopes, resources, authTime);
        var actor = new Claim(ActClaim, Actor(request.ClientId!, subject.GetClaim(ActClaim)), JsonClaimValueTypes.Json);
        actor.SetDestinations(Destinations.AccessToken);
        ((ClaimsIdentity)principal.Identity!).AddClaim(actor);
        principal.SetAuthorizationId(subject.GetAuthorizationId());

        // Never past the subject token: what it came from ends, and so does it.
        var lifetime = context.Features.Get<OpenIddictServerAspNetCoreFeature>()?.Transaction?.Options.AccessTokenLifetime ?? TimeSpan.FromHours(1);
        if (subject.GetExpirationDate() is { } expires)
        {
            var left = expires - context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
            lifetime = left < lifetime ? left : lifetime;
        }

        principal.SetAccessTokenLifetime(lifetime);
        return Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>
    /// The <c>act</c> claim (RFC 8693 section 4.1): the client acting, over whoever acted before it; a client exchanging
    /// a token it was itself the last to act in keeps the claim as it is (the chain does not grow by repeating it).
    /// </summary>
    private static string Actor(string clientId, string? previous)
    {
        var actor = new JsonObject { [Claims.Subject] = clientId };
        if (!string.IsNullOrEmpty(previous) && JsonNode.Parse(previous) is JsonObject before)
        {
            if (before[Claims.Subject] is JsonValue last && last.TryGetValue<string>(out var lastActor) && lastActor == clientId)
            {
                return previous;
            }

            actor[ActClaim] = before;
        }

        return actor.ToJsonString();
    }

    private static async Task<ImmutableArray<string>> MayAskAsync(IOpenIddictApplicationManager applications, object application, ImmutableArray<string> scopes, CancellationToken cancellationToken)
    {
        var allowed = ImmutableArray.CreateBuilder<string>();
        foreach (var scope in scopes)
        {
            // As OpenIddict's own check: openid and offline_access need no permission.
            if (scope is Scopes.OpenId or Scopes.OfflineAccess
                || await applications.HasPermissionAsync(application, Permissions.Prefixes.Scope + scope, cancellationToken))
            {
                allowed.Add(scope);
            }
        }

        return allowed.ToImmutable();
    }
}
