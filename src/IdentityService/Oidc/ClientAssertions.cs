using System.Collections.Immutable;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// Client authentication with a signed assertion (<c>private_key_jwt</c>, RFC 7523) for clients given public keys
/// (<c>jwks</c>). OpenIddict checks the signature against the client's keys, <c>iss</c> = <c>sub</c> = the client,
/// <c>aud</c> = the tenant's issuer, <c>exp</c>, and the type <c>client-authentication+jwt</c> (the profile of the
/// update to RFC 7523 that closes audience injection); the service adds what OpenID Connect Core 9 asks beyond it:
/// each assertion carries a <c>jti</c> and is used once (held in the protection store, shared through Redis, until its
/// <c>exp</c> and the <see cref="ClockSkew"/> past it that OpenIddict still accepts), and lives at most
/// <see cref="MaxLifetime"/>, which bounds what is held. The discovery document names the algorithms a client's keys
/// may sign with.
/// </summary>
internal static class ClientAssertions
{
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(15);

    /// <summary>How long past its <c>exp</c> OpenIddict still takes an assertion (IdentityModel's default clock skew).</summary>
    public static readonly TimeSpan ClockSkew = new Microsoft.IdentityModel.Tokens.TokenValidationParameters().ClockSkew;

    /// <summary>What a client's keys may sign its assertions with (<see cref="Management.ClientKeys"/> takes no other).</summary>
    public static readonly string[] Algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

    public static OpenIddictServerBuilder AddClientAssertions(this OpenIddictServerBuilder builder) => builder
        .AddEventHandler(FetchPublishedKeys.Descriptor)
        .AddEventHandler(RequireIssuerAudience.Descriptor)
        .AddEventHandler(UseOnce.Descriptor)
        .AddEventHandler(NameAlgorithms.Descriptor);

    /// <summary>
    /// An assertion whose audience is not the tenant's issuer alone (the token endpoint's URL, as OpenID Connect Core
    /// once advised) is refused as a failed client authentication (401 <c>invalid_client</c>) saying what the audience
    /// must be, where OpenIddict's generic audience check answers 400 <c>invalid_token</c> without saying it.
    /// </summary>
    internal sealed class RequireIssuerAudience : IOpenIddictServerHandler<ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
                .UseSingletonHandler<RequireIssuerAudience>()
                .SetOrder(OpenIddictServerHandlers.Protection.ValidateAudiences.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(ValidateTokenContext context)
        {
            if (context.Principal is not { } principal || context.ValidTokenTypes.Count != 1
                || !context.ValidTokenTypes.Contains(TokenTypeIdentifiers.Private.ClientAssertion))
            {
                return default;
            }

            // The tenant's issuer: its base URI (/t/{tenant}), as the discovery document names it.
            if ((context.Options.Issuer ?? context.BaseUri)?.AbsoluteUri.TrimEnd('/') is not { } issuer)
            {
                return default;
            }

            if (principal.GetAudiences() is not [var audience] || !string.Equals(audience.TrimEnd('/'), issuer, StringComparison.Ordinal))
            {
                context.Reject(Errors.InvalidClient, $"The client assertion's audience (aud) must be this server's issuer alone: {issuer}.");
            }

            return default;
        }
    }

    /// <summary>
    /// For a client that publishes its keys at a <c>jwks_uri</c>: makes sure the set held has the assertion's key
    /// (<see cref="ClientKeySets"/>) before OpenIddict checks the signature, which reads the keys without waiting. The
    /// assertion is read unverified here, for its <c>iss</c> and <c>kid</c> alone; one that cannot be read is left to
    /// OpenIddict to refuse.
    /// </summary>
    internal sealed class FetchPublishedKeys : IOpenIddictServerHandler<ProcessAuthenticationContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
                .UseSingletonHandler<FetchPublishedKeys>()
                .SetOrder(OpenIddictServerHandlers.ValidateClientAssertion.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ProcessAuthenticationContext context)
        {
            if (string.IsNullOrEmpty(context.ClientAssertion) || context.ClientAssertionType != ClientAssertionTypes.JwtBearer)
            {
                return;
            }

            Microsoft.IdentityModel.JsonWebTokens.JsonWebToken assertion;
            try
            {
                assertion = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(context.ClientAssertion);
            }
            catch (ArgumentException)
            {
                return;
            }

            var services = context.Transaction.RequestServices();
            if (assertion.TryGetPayloadValue<string>(Claims.Issuer, out var clientId) && !string.IsNullOrEmpty(clientId)
                && await services.GetRequiredService<TenantApplicationManager>().FindByClientIdAsync(clientId, context.CancellationToken)
                    is TenantApplication { JwksUri: { Length: > 0 } uri } client)
            {
                await services.GetRequiredService<ClientKeySets>().RefreshAsync(
                    client.TenantId, clientId, uri, string.IsNullOrEmpty(assertion.Kid) ? null : assertion.Kid, context.CancellationToken);
            }
        }
    }

    internal sealed class UseOnce : IOpenIddictServerHandler<ProcessAuthenticationContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
                .AddFilter<OpenIddictServerHandlerFilters.RequireClientAssertionPrincipal>()
                .UseSingletonHandler<UseOnce>()
                .SetOrder(OpenIddictServerHandlers.ValidateClientAssertionIssuer.Descriptor.Order + 500)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ProcessAuthenticationContext context)
        {
            var assertion = context.ClientAssertionPrincipal!;
            var jti = assertion.GetClaim(Claims.JwtId);
            if (string.IsNullOrEmpty(jti) || jti.Length > 200)
            {
                context.Reject(Errors.InvalidClient, "The client assertion must carry a jti claim (at most 200 characters): a value used once.");
                return;
            }

            var expires = assertion.GetExpirationDate();
            var now = context.Options.TimeProvider?.GetUtcNow() ?? DateTimeOffset.UtcNow;
            if (expires is null || expires > now + MaxLifetime)
            {
                context.Reject(Errors.InvalidClient, $"The client assertion must expire within {MaxLifetime.TotalMinutes:0} minutes of its use (exp).");
                return;
            }

            var tenant = context.Transaction.TenantState().Tenant;
            var store = context.Transaction.RequestServices().GetRequiredService<Protection.IProtectionStore>();
            var key = "assertion:" + Protection.OpaqueTokens.StoreKey(assertion.GetClaim(Claims.Issuer) + "\n" + jti);
            if (!await store.UseOnceAsync(tenant.Id, key, expires.Value + ClockSkew + TimeSpan.FromSeconds(1), context.CancellationToken))
            {
                context.Reject(Errors.InvalidClient, "The client assertion was already used: sign a new one, with a new jti, for each request.");
            }
        }
    }

    internal sealed class NameAlgorithms : IOpenIddictServerHandler<HandleConfigurationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<HandleConfigurationRequestContext>()
                .UseSingletonHandler<NameAlgorithms>()
                .SetOrder(OpenIddictServerHandlers.Discovery.AttachClientAuthenticationMethods.Descriptor.Order + 500)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(HandleConfigurationRequestContext context)
        {
            var algorithms = new OpenIddictParameter(Algorithms.ToImmutableArray<string?>());
            foreach (var endpoint in (string[])["token", "introspection", "revocation"])
            {
                context.Metadata[$"{endpoint}_endpoint_auth_signing_alg_values_supported"] = algorithms;
            }

            return default;
        }
    }
}
