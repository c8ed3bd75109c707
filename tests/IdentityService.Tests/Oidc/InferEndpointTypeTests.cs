using IdentityService.Oidc;
using Microsoft.Extensions.Logging.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// The service tells a request's endpoint by comparing paths (<see cref="InferEndpointTypeByPath"/>), in place of
/// OpenIddict's handler that builds URIs: for every request path, both must name the same endpoint.
/// </summary>
public sealed class InferEndpointTypeTests
{
    private static readonly string[] Bases = ["https://id.example.com/t/acme", "https://id.example.com/t/acme/", "https://id.example.com/", "http://localhost:5000"];

    private static readonly string[] Paths =
    [
        "/t/acme/connect/token", "/T/ACME/CONNECT/TOKEN", "/t/acme/connect/token/", "/t/acme/connect/tokens", "/t/acme/connect/toke",
        "/t/acme/connect", "/t/acme", "/t/acme/", "/t/acmeconnect/token", "/t/acme//connect/token", "/t/other/connect/token",
        "/t/acme/.well-known/openid-configuration", "/t/acme/.well-known/jwks/", "/t/acme/connect/userinfo", "/t/acme/connect/userinfo/",
        "/t/acme/connect/userinfo//", "/connect/token", "/connect/token/", "/.well-known/jwks", "/", "/t/acme/connect/authorize",
        "/t/acme/connect/par", "/t/acme/connect/device", "/t/acme/device", "/t/acme/device/", "/t/acme/connect/introspect",
        "/t/acme/connect/revoke", "/t/acme/connect/endsession",
    ];

    [Fact]
    public async Task EveryRequestPath_IsTheEndpointOpenIddictWouldSay()
    {
        var options = Options("connect/authorize", "connect/token", "connect/userinfo/");
        var compared = 0;
        foreach (var @base in Bases)
        {
            foreach (var path in Paths)
            {
                var baseUri = new Uri(@base);
                var requestUri = new Uri(baseUri.GetLeftPart(UriPartial.Authority) + path);
                Assert.Equal(await EndpointAsync(new OpenIddictServerHandlers.InferEndpointType(), options, baseUri, requestUri),
                    await EndpointAsync(new InferEndpointTypeByPath(), options, baseUri, requestUri));
                compared++;
            }
        }

        Assert.Equal(Bases.Length * Paths.Length, compared);
        Assert.Equal(OpenIddictServerEndpointType.Token,
            await EndpointAsync(new InferEndpointTypeByPath(), options, new Uri(Bases[0]), new Uri("https://id.example.com/t/acme/Connect/Token/")));
    }

    [Fact]
    public async Task EndpointsThatAreNotPlainPaths_AreLeftToOpenIddictsComparison()
    {
        // An absolute endpoint URI and one with a leading slash: OpenIddict resolves those against the base its own way.
        var options = Options("https://id.example.com/t/acme/connect/authorize", "/connect/token", "connect/userinfo");
        foreach (var path in Paths)
        {
            var baseUri = new Uri(Bases[0]);
            var requestUri = new Uri("https://id.example.com" + path);
            Assert.Equal(await EndpointAsync(new OpenIddictServerHandlers.InferEndpointType(), options, baseUri, requestUri),
                await EndpointAsync(new InferEndpointTypeByPath(), options, baseUri, requestUri));
        }

        Assert.False(InferEndpointTypeByPath.IsPlainRelativePath(new Uri("../token", UriKind.Relative)));
        Assert.False(InferEndpointTypeByPath.IsPlainRelativePath(new Uri("connect/to%6Ben", UriKind.Relative)));
        Assert.True(InferEndpointTypeByPath.IsPlainRelativePath(new Uri(".well-known/openid-configuration", UriKind.Relative)));
    }

    private static OpenIddictServerOptions Options(string authorization, string token, string userInfo)
    {
        var options = new OpenIddictServerOptions();
        options.AuthorizationEndpointUris.Add(new Uri(authorization, UriKind.RelativeOrAbsolute));
        options.TokenEndpointUris.Add(new Uri(token, UriKind.RelativeOrAbsolute));
        options.UserInfoEndpointUris.Add(new Uri(userInfo, UriKind.RelativeOrAbsolute));
        options.ConfigurationEndpointUris.Add(new Uri(".well-known/openid-configuration", UriKind.Relative));
        options.JsonWebKeySetEndpointUris.Add(new Uri(".well-known/jwks", UriKind.Relative));
        // The service's other endpoints, as OidcSetup names them: each must be told apart as OpenIddict does.
        options.PushedAuthorizationEndpointUris.Add(new Uri("connect/par", UriKind.Relative));
        options.DeviceAuthorizationEndpointUris.Add(new Uri("connect/device", UriKind.Relative));
        options.EndUserVerificationEndpointUris.Add(new Uri("device", UriKind.Relative));
        options.IntrospectionEndpointUris.Add(new Uri("connect/introspect", UriKind.Relative));
        options.RevocationEndpointUris.Add(new Uri("connect/revoke", UriKind.Relative));
        options.EndSessionEndpointUris.Add(new Uri("connect/endsession", UriKind.Relative));
        return options;
    }

    private static async Task<OpenIddictServerEndpointType> EndpointAsync(IOpenIddictServerHandler<ProcessRequestContext> handler, OpenIddictServerOptions options, Uri baseUri, Uri requestUri)
    {
        var transaction = new OpenIddictServerTransaction { Options = options, Logger = NullLogger.Instance };
        var context = new ProcessRequestContext(transaction) { BaseUri = baseUri, RequestUri = requestUri };
        await handler.HandleAsync(context);
        return context.EndpointType;
    }
}
