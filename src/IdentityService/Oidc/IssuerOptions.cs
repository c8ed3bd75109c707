using Microsoft.AspNetCore;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>The <c>Issuer</c> section.</summary>
public sealed class IssuerOptions
{
    public const string Section = "Issuer";

    /// <summary>
    /// The public origin issuers are built from, for example <c>https://id.example.com</c>: a tenant's issuer is
    /// <c>{PublicOrigin}/t/{tenant}</c>. Required outside Development; in Development the request's origin is used when unset.
    /// </summary>
    public string? PublicOrigin { get; set; }

    /// <summary>The origin of issuers for this request: the configured one, never the Host header, when set.</summary>
    public string OriginFor(HttpRequest request) =>
        PublicOrigin?.TrimEnd('/') ?? $"{request.Scheme}://{request.Host}";

    /// <summary>The issuer of a tenant as seen by this request.</summary>
    public string IssuerFor(HttpRequest request, string tenantId) => $"{OriginFor(request)}/t/{tenantId}";
}

/// <summary>Builds OpenIddict's base URI (and so every issuer and endpoint URL) from <see cref="IssuerOptions.PublicOrigin"/> when set.</summary>
internal sealed class UsePublicOrigin(Microsoft.Extensions.Options.IOptions<IssuerOptions> options) : IOpenIddictServerHandler<ProcessRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessRequestContext>()
            .UseSingletonHandler<UsePublicOrigin>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ResolveRequestUri.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessRequestContext context)
    {
        if (options.Value.PublicOrigin is { Length: > 0 } origin && context.Transaction.GetHttpRequest() is { } request)
        {
            var baseUri = origin.TrimEnd('/') + request.PathBase.Value;
            context.BaseUri = new Uri(baseUri, UriKind.Absolute);
            context.RequestUri = new Uri(baseUri + request.Path.Value + request.QueryString.Value, UriKind.Absolute);
        }

        return ValueTask.CompletedTask;
    }
}
