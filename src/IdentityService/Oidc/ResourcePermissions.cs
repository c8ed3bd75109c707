using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// A <c>resource</c> (RFC 8707) the client may not ask for is refused with <c>invalid_target</c>, as RFC 8707 asks and
/// as the service answers a resource that is not one of the tenant's; OpenIddict's own checks, which these replace on
/// the authorization, pushed authorization and token endpoints, answer <c>invalid_request</c>. Same rule: each
/// resource must be among the client's permissions (<c>rsrc:</c>).
/// </summary>
internal static class ResourcePermissions
{
    public static OpenIddictServerBuilder UseInvalidTargetForResources(this OpenIddictServerBuilder builder) => builder
        .RemoveEventHandler(OpenIddictServerHandlers.Authentication.ValidateResourcePermissions.Descriptor)
        .AddEventHandler(Check<ValidateAuthorizationRequestContext>.Replacing(OpenIddictServerHandlers.Authentication.ValidateResourcePermissions.Descriptor))
        .RemoveEventHandler(OpenIddictServerHandlers.Authentication.ValidatePushedResourcePermissions.Descriptor)
        .AddEventHandler(Check<ValidatePushedAuthorizationRequestContext>.Replacing(OpenIddictServerHandlers.Authentication.ValidatePushedResourcePermissions.Descriptor))
        .RemoveEventHandler(OpenIddictServerHandlers.Exchange.ValidateResourcePermissions.Descriptor)
        .AddEventHandler(Check<ValidateTokenRequestContext>.Replacing(OpenIddictServerHandlers.Exchange.ValidateResourcePermissions.Descriptor));

    internal sealed class Check<TContext> : IOpenIddictServerHandler<TContext> where TContext : BaseValidatingContext
    {
        private readonly IOpenIddictApplicationManager _applications;

        public Check(IOpenIddictApplicationManager applications) => _applications = applications;

        /// <summary>A descriptor in the place (order and filters) of OpenIddict's handler it replaces.</summary>
        public static OpenIddictServerHandlerDescriptor Replacing(OpenIddictServerHandlerDescriptor builtIn) =>
            OpenIddictServerHandlerDescriptor.CreateBuilder<TContext>()
                .AddFilter<OpenIddictServerHandlerFilters.RequireResourcePermissionsEnabled>()
                .AddFilter<OpenIddictServerHandlerFilters.RequireDegradedModeDisabled>()
                .UseScopedHandler<Check<TContext>>()
                .SetOrder(builtIn.Order)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(TContext context)
        {
            var request = context.Transaction.Request!;
            var resources = request.GetResources();
            if (resources.IsDefaultOrEmpty)
            {
                return;
            }

            var application = await _applications.FindByClientIdAsync(request.ClientId!, context.CancellationToken)
                ?? throw new InvalidOperationException("OpenIddict validated a client that does not exist.");
            foreach (var resource in resources)
            {
                if (!await _applications.HasPermissionAsync(application, Permissions.Prefixes.Resource + resource, context.CancellationToken))
                {
                    // A fixed text: the value is the caller's, and error_description allows few characters (RFC 6749 5.2).
                    context.Reject(Errors.InvalidTarget, "This client may not ask for tokens for one of these resources.");
                    return;
                }
            }
        }
    }
}
