using System.Collections.Immutable;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace IdentityService.Oidc;

/// <summary>
/// OpenIddict's per-request entity caches, made on first use. Each of OpenIddict's caches builds a MemoryCache
/// (with its dictionaries) when its manager is made, and a token request makes the managers it might need: a
/// client_credentials grant built three caches it never read (clients come from <see cref="ClientCache"/>), a
/// tenth of what the request allocated. These wrappers build OpenIddict's own cache the first time one is used,
/// and behave as it does from then on.
/// </summary>
internal static class LazyEntityCaches
{
    public static IServiceCollection AddLazyEntityCaches(this IServiceCollection services)
    {
        services.Replace(ServiceDescriptor.Scoped(typeof(IOpenIddictApplicationCache<>), typeof(LazyApplicationCache<>)));
        services.Replace(ServiceDescriptor.Scoped(typeof(IOpenIddictAuthorizationCache<>), typeof(LazyAuthorizationCache<>)));
        services.Replace(ServiceDescriptor.Scoped(typeof(IOpenIddictScopeCache<>), typeof(LazyScopeCache<>)));
        services.Replace(ServiceDescriptor.Scoped(typeof(IOpenIddictTokenCache<>), typeof(LazyTokenCache<>)));
        return services;
    }

    /// <summary>Makes OpenIddict's cache of type <typeparamref name="TCache"/> on first use; disposes it with the scope.</summary>
    internal abstract class Lazy<TCache>(IServiceProvider services) : IDisposable where TCache : class
    {
        private TCache? _inner;

        protected TCache Inner => _inner ??= ActivatorUtilities.CreateInstance<TCache>(services);

        public void Dispose() => (_inner as IDisposable)?.Dispose();
    }
}

internal sealed class LazyApplicationCache<TApplication>(IServiceProvider services)
    : LazyEntityCaches.Lazy<OpenIddictApplicationCache<TApplication>>(services), IOpenIddictApplicationCache<TApplication>
    where TApplication : class
{
    public ValueTask AddAsync(TApplication application, CancellationToken cancellationToken) => Inner.AddAsync(application, cancellationToken);

    public ValueTask<TApplication?> FindByClientIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByClientIdAsync(identifier, cancellationToken);

    public ValueTask<TApplication?> FindByIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByIdAsync(identifier, cancellationToken);

    public IAsyncEnumerable<TApplication> FindByPostLogoutRedirectUriAsync(string uri, CancellationToken cancellationToken) => Inner.FindByPostLogoutRedirectUriAsync(uri, cancellationToken);

    public IAsyncEnumerable<TApplication> FindByRedirectUriAsync(string uri, CancellationToken cancellationToken) => Inner.FindByRedirectUriAsync(uri, cancellationToken);

    public ValueTask RemoveAsync(TApplication application, CancellationToken cancellationToken) => Inner.RemoveAsync(application, cancellationToken);
}

internal sealed class LazyAuthorizationCache<TAuthorization>(IServiceProvider services)
    : LazyEntityCaches.Lazy<OpenIddictAuthorizationCache<TAuthorization>>(services), IOpenIddictAuthorizationCache<TAuthorization>
    where TAuthorization : class
{
    public ValueTask AddAsync(TAuthorization authorization, CancellationToken cancellationToken) => Inner.AddAsync(authorization, cancellationToken);

    public IAsyncEnumerable<TAuthorization> FindAsync(string? subject, string? client, string? status, string? type, ImmutableArray<string>? scopes, CancellationToken cancellationToken) =>
        Inner.FindAsync(subject, client, status, type, scopes, cancellationToken);

    public IAsyncEnumerable<TAuthorization> FindByApplicationIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByApplicationIdAsync(identifier, cancellationToken);

    public ValueTask<TAuthorization?> FindByIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByIdAsync(identifier, cancellationToken);

    public IAsyncEnumerable<TAuthorization> FindBySubjectAsync(string subject, CancellationToken cancellationToken) => Inner.FindBySubjectAsync(subject, cancellationToken);

    public ValueTask RemoveAsync(TAuthorization authorization, CancellationToken cancellationToken) => Inner.RemoveAsync(authorization, cancellationToken);
}

internal sealed class LazyScopeCache<TScope>(IServiceProvider services)
    : LazyEntityCaches.Lazy<OpenIddictScopeCache<TScope>>(services), IOpenIddictScopeCache<TScope>
    where TScope : class
{
    public ValueTask AddAsync(TScope scope, CancellationToken cancellationToken) => Inner.AddAsync(scope, cancellationToken);

    public ValueTask<TScope?> FindByIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByIdAsync(identifier, cancellationToken);

    public ValueTask<TScope?> FindByNameAsync(string name, CancellationToken cancellationToken) => Inner.FindByNameAsync(name, cancellationToken);

    public IAsyncEnumerable<TScope> FindByNamesAsync(ImmutableArray<string> names, CancellationToken cancellationToken) => Inner.FindByNamesAsync(names, cancellationToken);

    public IAsyncEnumerable<TScope> FindByResourceAsync(string resource, CancellationToken cancellationToken) => Inner.FindByResourceAsync(resource, cancellationToken);

    public ValueTask RemoveAsync(TScope scope, CancellationToken cancellationToken) => Inner.RemoveAsync(scope, cancellationToken);
}

internal sealed class LazyTokenCache<TToken>(IServiceProvider services)
    : LazyEntityCaches.Lazy<OpenIddictTokenCache<TToken>>(services), IOpenIddictTokenCache<TToken>
    where TToken : class
{
    public ValueTask AddAsync(TToken token, CancellationToken cancellationToken) => Inner.AddAsync(token, cancellationToken);

    public IAsyncEnumerable<TToken> FindAsync(string? subject, string? client, string? status, string? type, CancellationToken cancellationToken) =>
        Inner.FindAsync(subject, client, status, type, cancellationToken);

    public IAsyncEnumerable<TToken> FindByApplicationIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByApplicationIdAsync(identifier, cancellationToken);

    public IAsyncEnumerable<TToken> FindByAuthorizationIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByAuthorizationIdAsync(identifier, cancellationToken);

    public ValueTask<TToken?> FindByIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByIdAsync(identifier, cancellationToken);

    public ValueTask<TToken?> FindByReferenceIdAsync(string identifier, CancellationToken cancellationToken) => Inner.FindByReferenceIdAsync(identifier, cancellationToken);

    public IAsyncEnumerable<TToken> FindBySubjectAsync(string subject, CancellationToken cancellationToken) => Inner.FindBySubjectAsync(subject, cancellationToken);

    public ValueTask RemoveAsync(TToken token, CancellationToken cancellationToken) => Inner.RemoveAsync(token, cancellationToken);
}
