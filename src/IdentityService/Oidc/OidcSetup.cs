using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenIddict.Core;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>The OpenID Connect provider: OpenIddict's server, per tenant, on the service's database.</summary>
public static class OidcSetup
{
    public static IServiceCollection AddOidc(this IServiceCollection services, IHostEnvironment environment)
    {
        services.AddOptions<KeyOptions>().BindConfiguration(KeyOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<TenantKeyRing>();
        services.AddSingleton<TenantOidcStateCache>();
        services.AddSingleton<VerifiedSecretCache>();
        services.AddSingleton<ClientCache>();
        services.AddSingleton<FamilyAdvances>();
        // The same scoped instances that OpenIddict resolves, under their own types: for the code that changes clients,
        // and for the sign-out, which ends a session's sign-ins.
        services.AddScoped(provider => (TenantApplicationManager)provider.GetRequiredService<OpenIddictApplicationManager<TenantApplication>>());
        services.AddScoped(provider => (TenantAuthorizationManager)provider.GetRequiredService<OpenIddictAuthorizationManager<TenantAuthorization>>());
        services.AddScoped<UserClaims>();
        services.AddScoped<RevokedTokens>();
        services.AddScoped<CodeIssuanceWrites>();
        services.AddSingleton<ClientKeySets>();
        services.AddHttpClient(ClientKeySets.HttpClientName, client =>
            {
                client.DefaultRequestHeaders.UserAgent.ParseAdd("IdentityService-Keys/1");
                client.MaxResponseContentBufferSize = ClientKeySets.MaxBytes;
            })
            .ConfigurePrimaryHttpMessageHandler(Webhooks.WebhooksSetup.OutboundHandler);
        services.AddScoped<BackchannelLogout>();
        services.AddSingleton<BackchannelLogoutSender>();
        services.AddHostedService(provider => provider.GetRequiredService<BackchannelLogoutSender>());
        services.AddHttpClient(BackchannelLogoutSender.HttpClientName, client => client.DefaultRequestHeaders.UserAgent.ParseAdd("IdentityService-Logout/1"))
            .ConfigurePrimaryHttpMessageHandler(Webhooks.WebhooksSetup.OutboundHandler);
        services.AddCors();
        services.AddSingleton<Microsoft.AspNetCore.Cors.Infrastructure.ICorsPolicyProvider, ClientCorsPolicyProvider>();

        services.AddOpenIddict()
            .AddCore(options =>
            {
                options.UseEntityFrameworkCore()
                    .UseDbContext<Data.IdentityDb>()
                    .ReplaceDefaultEntities<TenantApplication, TenantAuthorization, TenantScope, TenantToken, Guid>();
                options.ReplaceApplicationManager<TenantApplication, TenantApplicationManager>();
                options.ReplaceTokenManager<TenantToken, TenantTokenManager>();
                options.ReplaceAuthorizationManager<TenantAuthorization, TenantAuthorizationManager>();
                options.ReplaceTokenStore<TenantToken, TenantTokenStore>();
                options.ReplaceAuthorizationStore<TenantAuthorization, TenantAuthorizationStore>();
            })
            .AddServer(options =>
            {
                // Relative URIs: OpenIddict resolves them against the path base /t/{tenant}, which also gives
                // each tenant its own issuer. A leading slash would put them at the host's root.
                options.SetAuthorizationEndpointUris("connect/authorize")
                    .SetTokenEndpointUris("connect/token")
                    .SetUserInfoEndpointUris("connect/userinfo")
                    .SetIntrospectionEndpointUris("connect/introspect")
                    .SetRevocationEndpointUris("connect/revoke")
                    .SetEndSessionEndpointUris("connect/endsession")
                    // The device authorization grant (RFC 8628): a TV or a command-line tool asks for a code at
                    // connect/device and polls the token endpoint while its user approves it on the device page.
                    .SetDeviceAuthorizationEndpointUris("connect/device")
                    .SetEndUserVerificationEndpointUris("device")
                    // Pushed authorization requests (RFC 9126): a client posts its authorization request to connect/par
                    // and sends the browser to connect/authorize with the request_uri it gets back (AuthorizationEndpoint).
                    .SetPushedAuthorizationEndpointUris("connect/par");

                options.AllowAuthorizationCodeFlow().AllowRefreshTokenFlow().AllowClientCredentialsFlow().AllowDeviceAuthorizationFlow();
                options.RequireProofKeyForCodeExchange();
                // prompt=create opens the sign-up page where a tenant takes sign-ups (the sign-in page elsewhere).
                options.RegisterPromptValues(PromptValues.Create);
                options.RegisterScopes(Scopes.OpenId, Scopes.Profile, Scopes.Email, Scopes.Phone, Scopes.OfflineAccess, Scopes.Roles, Clients.ManageScope);
                options.RegisterClaims(Claims.Subject, Claims.Name, Claims.GivenName, Claims.FamilyName, Claims.Locale, Claims.UpdatedAt,
                    Claims.Email, Claims.EmailVerified, Claims.PhoneNumber, Claims.PhoneNumberVerified, Claims.Role, Claims.AuthenticationTime);

                // Access tokens are plain signed JWTs, so a resource server validates them with the JWKS alone.
                options.DisableAccessTokenEncryption();
                options.Configure(o =>
                {
                    // PKCE with S256 only: "plain" protects nothing against a stolen code.
                    o.CodeChallengeMethods.Clear();
                    o.CodeChallengeMethods.Add(CodeChallengeMethods.Sha256);
                    // Resource indicators are checked against the tenant's API resources as written (OpenIddict would
                    // compare them with Uri.AbsoluteUri, which adds a slash to "https://api.example") and, as
                    // OpenIddict does, against each client's resource permissions.
                    o.DisableResourceValidation = true;
                    o.ResponseModes.Clear();
                    o.ResponseModes.UnionWith([ResponseModes.Query, ResponseModes.FormPost]);
                });

                options.AddEventHandler(SkipRequestsOutsideTenants.Descriptor);
                options.AddEventHandler(SelectTenantCredentials.Descriptor);
                options.AddEventHandler(UsePublicOrigin.Descriptor);
                options.AddEventHandler(BackchannelLogout.NameSupport.Descriptor);
                options.RemoveEventHandler(OpenIddictServerAspNetCoreHandlers.ProcessJsonResponse<OpenIddictServerEvents.ApplyTokenResponseContext>.Descriptor);
                options.AddEventHandler(WriteTokenResponse.Descriptor);
                options.RemoveEventHandler(OpenIddictServerHandlers.InferEndpointType.Descriptor);
                options.AddEventHandler(InferEndpointTypeByPath.Descriptor);
                options.AddEventHandler(SlimInternalTokens.Descriptor);
                options.RemoveEventHandler(OpenIddictServerHandlers.AttachTokenDigests.Descriptor);
                options.AddEventHandler(AttachTokenDigestsOfIdentityToken.Descriptor);
                options.AddRowlessAccessTokens();
                options.AddTokenFamilies();
                options.AddSealedRefreshTokens();
                options.AddCodeIssuanceWrites();
                options.AddRequestRules();
                options.AddDeviceRequests();
                options.AddClientAssertions();
                options.AddResourceServers();
                options.UseInvalidTargetForResources();
                options.AddTokenExchange();

                var aspNetCore = options.UseAspNetCore()
                    .EnableAuthorizationEndpointPassthrough()
                    .EnableTokenEndpointPassthrough()
                    .EnableUserInfoEndpointPassthrough()
                    .EnableEndSessionEndpointPassthrough()
                    .EnableEndUserVerificationEndpointPassthrough()
                    .EnableStatusCodePagesIntegration();
                if (environment.IsDevelopment())
                {
                    aspNetCore.DisableTransportSecurityRequirement();
                }
            });

        // OpenIddict's per-request entity caches, made only when a request uses one.
        services.AddLazyEntityCaches();

        // OpenIddict's dispatcher, over per-event handler lists made once (ServerDispatcher).
        services.Replace(ServiceDescriptor.Scoped<IOpenIddictServerDispatcher, ServerDispatcher>());

        // Each tenant's options are built once, with its keys, and handed to OpenIddict per request.
        services.AddSingleton<IConfigureOptions<OpenIddictServerOptions>, TenantServerOptionsConfigurer>();
        services.AddSingleton<IOptionsMonitor<OpenIddictServerOptions>, TenantServerOptionsMonitor>();
        return services;
    }

    public static IEndpointRouteBuilder MapOidc(this IEndpointRouteBuilder endpoints)
    {
        // Described by each tenant's discovery document, not by the management API's OpenAPI document.
        var oidc = endpoints.MapGroup("").ExcludeFromDescription();
        oidc.MapMethods("/connect/authorize", [HttpMethods.Get, HttpMethods.Post], (Delegate)AuthorizationEndpoint.HandleAsync).DisableAntiforgery();
        oidc.MapPost("/connect/token", (Delegate)TokenEndpoint.HandleAsync).DisableAntiforgery();
        oidc.MapMethods("/connect/userinfo", [HttpMethods.Get, HttpMethods.Post], (Delegate)UserInfoEndpoint.HandleAsync).DisableAntiforgery();
        oidc.MapMethods("/connect/endsession", [HttpMethods.Get, HttpMethods.Post], (Delegate)EndSessionEndpoint.HandleAsync).DisableAntiforgery();
        return endpoints;
    }
}
