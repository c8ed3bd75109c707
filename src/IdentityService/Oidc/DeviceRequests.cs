using System.Security.Claims;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// The device authorization endpoint (RFC 8628 3.1) with resource indicators (RFC 8707), as the authorization endpoint
/// takes them: each one named must be one of the tenant's API resources and allowed to the client, else
/// <c>invalid_target</c>; those named are kept in the request the person then allows on the device page.
/// (Resource validation is off in OpenIddict's options for every endpoint, see <see cref="OidcSetup"/>.) A user code
/// already answered is refused without revoking the device's grant.
/// </summary>
internal static class DeviceRequests
{
    public static OpenIddictServerBuilder AddDeviceRequests(this OpenIddictServerBuilder builder) => builder
        .AddEventHandler(ValidateResources.Descriptor)
        .AddEventHandler(KeepResources.Descriptor)
        .AddEventHandler(RefuseUsedUserCode.Descriptor)
        .AddEventHandler(SlowDownPolling.Descriptor);

    /// <summary>How often a device may poll the token endpoint with its device code: RFC 8628's default interval.</summary>
    internal static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A device polling with its device code more than once in an interval (5-second windows) is answered
    /// <c>slow_down</c> (RFC 8628 3.5), before the code is looked up; it must then wait 5 seconds more between polls.
    /// Counted in the protection store (shared through Redis), by a hash of the code, never the code.
    /// </summary>
    internal sealed class SlowDownPolling : IOpenIddictServerHandler<ValidateTokenRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
                .UseSingletonHandler<SlowDownPolling>()
                .SetOrder(OpenIddictServerHandlers.Exchange.ValidateAuthentication.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ValidateTokenRequestContext context)
        {
            if (!context.Request.IsDeviceCodeGrantType() || context.Request.DeviceCode is not { Length: > 0 and <= 1000 } code)
            {
                return;
            }

            var tenant = context.Transaction.TenantState().Tenant;
            var store = context.Transaction.RequestServices().GetRequiredService<Protection.IProtectionStore>();
            var key = "poll:" + Protection.OpaqueTokens.StoreKey(code);
            if (await store.IncrementAsync(tenant.Id, key, Interval, context.CancellationToken) > 1)
            {
                context.Reject(Errors.SlowDown, $"Polled within {Interval.TotalSeconds:0} seconds of the last poll: wait 5 seconds longer between polls from now on.");
            }
        }
    }

    /// <summary>
    /// A user code already answered is refused as no longer valid, and nothing more: OpenIddict would take it for a
    /// replay and revoke what the device was given. The device page meets used codes in the ordinary course (the
    /// browser's Back button to the page with the code, a second person typing the code from the same screen), and
    /// none of those should sign the device out. The device code itself is still used once, its replay revoking as a
    /// code's does.
    /// </summary>
    internal sealed class RefuseUsedUserCode : IOpenIddictServerHandler<ValidateTokenContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
                .AddFilter<OpenIddictServerHandlerFilters.RequireTokenStorageEnabled>()
                .UseSingletonHandler<RefuseUsedUserCode>()
                .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ValidateTokenContext context)
        {
            if (context.Principal?.GetTokenType() != TokenTypeIdentifiers.Private.UserCode || string.IsNullOrEmpty(context.TokenId))
            {
                return;
            }

            var tokens = context.Transaction.RequestServices().GetRequiredService<IOpenIddictTokenManager>();
            if (await tokens.FindByIdAsync(context.TokenId, context.CancellationToken) is { } token
                && await tokens.HasStatusAsync(token, Statuses.Redeemed, context.CancellationToken))
            {
                context.Reject(Errors.InvalidToken, "The user code was already used.");
            }
        }
    }

    internal sealed class ValidateResources : IOpenIddictServerHandler<ValidateDeviceAuthorizationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateDeviceAuthorizationRequestContext>()
                .UseSingletonHandler<ValidateResources>()
                .SetOrder(OpenIddictServerHandlers.Device.ValidateScopePermissions.Descriptor.Order + 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ValidateDeviceAuthorizationRequestContext context)
        {
            var resources = context.Request.GetResources();
            if (resources.IsDefaultOrEmpty)
            {
                return;
            }

            var tenant = context.Transaction.TenantState().Tenant;
            var applications = context.Transaction.RequestServices().GetRequiredService<IOpenIddictApplicationManager>();
            var application = await applications.FindByClientIdAsync(context.ClientId!, context.CancellationToken);
            foreach (var resource in resources)
            {
                if (!tenant.ApiResources.Contains(resource) || application is null
                    || !await applications.HasPermissionAsync(application, Permissions.Prefixes.Resource + resource, context.CancellationToken))
                {
                    context.Reject(Errors.InvalidTarget, "A resource is not one of this tenant's API resources, or not one this client may ask for.");
                    return;
                }
            }
        }
    }

    /// <summary>The request's scopes and resources, kept in the device code and its user code as OpenIddict keeps the scopes.</summary>
    internal sealed class KeepResources : IOpenIddictServerHandler<HandleDeviceAuthorizationRequestContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<HandleDeviceAuthorizationRequestContext>()
                .UseSingletonHandler<KeepResources>()
                .SetOrder(int.MaxValue - 100_000)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(HandleDeviceAuthorizationRequestContext context)
        {
            var resources = context.Request.GetResources();
            if (context.Principal is null && !resources.IsDefaultOrEmpty)
            {
                // As OpenIddict makes it when no handler does (an identity without authentication type: nobody is signed in yet).
                var principal = new ClaimsPrincipal(new ClaimsIdentity());
                principal.SetScopes(context.Request.GetScopes());
                principal.SetResources(resources);
                context.Principal = principal;
            }

            return ValueTask.CompletedTask;
        }
    }
}
