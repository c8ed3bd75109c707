using Microsoft.AspNetCore;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>Rules on requests that OpenIddict leaves open and this service closes.</summary>
internal static class RequestRules
{
    public static OpenIddictServerBuilder AddRequestRules(this OpenIddictServerBuilder builder) => builder
        .AddEventHandler(RefuseAccessTokenInUrl.Descriptor)
        .AddEventHandler(RequireSha256CodeChallenge.Descriptor);

    /// <summary>
    /// The userinfo endpoint takes the access token from the Authorization header or a POST body (RFC 6750 2.1, 2.2),
    /// not from the URL's query (2.3, which the RFC advises against): a URL is written to logs, proxies and history.
    /// </summary>
    internal sealed class RefuseAccessTokenInUrl : IOpenIddictServerHandler<ValidateUserInfoRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateUserInfoRequestContext>()
                .UseSingletonHandler<RefuseAccessTokenInUrl>()
                .SetOrder(int.MinValue + 100_000)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(ValidateUserInfoRequestContext context)
        {
            if (context.Transaction.GetHttpRequest()?.Query.ContainsKey(Parameters.AccessToken) == true)
            {
                context.Reject(Errors.InvalidRequest, "The access token goes in the Authorization header (or a POST body), never in the URL.");
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// A code challenge is what S256 makes of a verifier (RFC 7636 4.2): 43 characters of BASE64URL. OpenIddict takes any
    /// string; a challenge no verifier can match would only fail later, at the code's redemption.
    /// </summary>
    internal sealed class RequireSha256CodeChallenge : IOpenIddictServerHandler<ValidateAuthorizationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateAuthorizationRequestContext>()
                .UseSingletonHandler<RequireSha256CodeChallenge>()
                .SetOrder(OpenIddictServerHandlers.Authentication.ValidateProofKeyForCodeExchangeParameters.Descriptor.Order + 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(ValidateAuthorizationRequestContext context)
        {
            if (context.Request.CodeChallenge is { } challenge
                && (challenge.Length != 43 || !challenge.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            {
                context.Reject(Errors.InvalidRequest, "The code_challenge must be the 43-character BASE64URL of the code verifier's SHA-256 (RFC 7636).");
            }

            return ValueTask.CompletedTask;
        }
    }
}
