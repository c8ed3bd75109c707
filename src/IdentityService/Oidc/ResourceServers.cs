using System.Text.Json;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// Clients that are the back end of some of the tenant's APIs (<see cref="TenantApplication.ServedResources"/>): an
/// access token issued for one of those APIs names the API (a URI) as audience, not the client, so OpenIddict would
/// let the client neither introspect it (RFC 7662: a resource server asking whether a token it was sent is still
/// live, which a JWT alone cannot say once revoked) nor exchange it (<see cref="TokenExchange"/>). Serving the API
/// gives both.
/// </summary>
internal static class ResourceServers
{
    public static OpenIddictServerBuilder AddResourceServers(this OpenIddictServerBuilder builder) => builder
        .RemoveEventHandler(OpenIddictServerHandlers.Introspection.ValidateAuthorizedParty.Descriptor)
        .AddEventHandler(IntrospectionByServer.Descriptor);

    /// <summary>The client's served APIs as stored (a JSON array), read.</summary>
    public static IReadOnlyList<string> Of(TenantApplication application) =>
        application.ServedResources is { Length: > 0 } json ? JsonSerializer.Deserialize<List<string>>(json) ?? [] : [];

    /// <summary>
    /// Whether the client <paramref name="clientId"/> may use <paramref name="token"/> (an access token) as its own: the
    /// token names it as audience or presenter (OpenIddict's rule), or it serves an API among the token's audiences.
    /// </summary>
    public static async Task<bool> MayUseAsync(OpenIddictServerTransaction transaction, string clientId, System.Security.Claims.ClaimsPrincipal token, CancellationToken cancellationToken)
    {
        if (token.HasAudience(clientId) || token.HasPresenter(clientId))
        {
            return true;
        }

        var audiences = token.GetAudiences();
        if (audiences.IsDefaultOrEmpty)
        {
            return false;
        }

        // Resolved here, not injected: the handlers run on every request of their endpoint, and most need nothing.
        var applications = transaction.RequestServices().GetRequiredService<IOpenIddictApplicationManager>();
        return await applications.FindByClientIdAsync(clientId, cancellationToken) is TenantApplication application
            && Of(application) is { Count: > 0 } served && audiences.Any(served.Contains);
    }

    /// <summary>
    /// OpenIddict's check of who may introspect a token (its audiences and presenters), with the back ends of the
    /// APIs among an access token's audiences added.
    /// </summary>
    internal sealed class IntrospectionByServer : IOpenIddictServerHandler<ValidateIntrospectionRequestContext>
    {
        private static readonly OpenIddictServerHandlers.Introspection.ValidateAuthorizedParty BuiltIn = new();

        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateIntrospectionRequestContext>()
                .AddFilter<OpenIddictServerHandlerFilters.RequireClientIdParameter>()
                .UseSingletonHandler<IntrospectionByServer>()
                .SetOrder(OpenIddictServerHandlers.Introspection.ValidateAuthorizedParty.Descriptor.Order)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ValidateIntrospectionRequestContext context)
        {
            var token = context.GenericTokenPrincipal;
            if (token is not null && token.HasTokenType(TokenTypeIdentifiers.AccessToken) && !string.IsNullOrEmpty(context.ClientId)
                && await MayUseAsync(context.Transaction, context.ClientId, token, context.CancellationToken))
            {
                return;
            }

            await BuiltIn.HandleAsync(context);
        }
    }
}
