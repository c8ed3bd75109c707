using IdentityService.Oidc;
using Microsoft.Extensions.DependencyInjection;
using ScopedHandlers = IdentityService.Oidc.ServerDispatcher.ScopedHandlers;

namespace IdentityService.Tests.Oidc;

public sealed class ScopedHandlersTests
{
    private sealed class Dependency;

    private sealed class Unregistered;

    // The shape of OpenIddict's handlers: a parameterless constructor that refuses (degraded mode), and the real one.
    private sealed class Handler
    {
        public Handler() => throw new InvalidOperationException("The dependency is required.");

        public Handler(Dependency dependency) => Dependency = dependency;

        public Dependency Dependency { get; }
    }

    private sealed class DisposableHandler : IDisposable
    {
        public void Dispose()
        {
        }
    }

    private sealed class TwoEquallyLong
    {
        public TwoEquallyLong(Dependency dependency) => _ = dependency;

        public TwoEquallyLong(string name) => _ = name;
    }

    private sealed class NeedsUnregistered
    {
        public NeedsUnregistered() => throw new InvalidOperationException("Degraded.");

        public NeedsUnregistered(Unregistered unregistered) => _ = unregistered;
    }

    // What the dispatcher does: the factory made once, then called with the request's scope.
    private static object? Make(ServiceDescriptor descriptor, IServiceProvider scope) =>
        ScopedHandlers.FactoryFor(descriptor, scope.GetService<IServiceProviderIsService>())?.Invoke(scope);

    private static ServiceProvider Provider() => new ServiceCollection()
        .AddScoped<Dependency>()
        .AddScoped<Handler>()
        .AddScoped<DisposableHandler>()
        .AddScoped<TwoEquallyLong>()
        .AddScoped<NeedsUnregistered>()
        .BuildServiceProvider(validateScopes: true);

    [Fact]
    public void AScopedHandler_IsMadeByItsLongestConstructor_WithItsDependenciesFromTheRequestScope()
    {
        using var root = Provider();
        using var first = root.CreateScope();
        using var second = root.CreateScope();

        var made = Assert.IsType<Handler>(Make(ServiceDescriptor.Scoped<Handler, Handler>(), first.ServiceProvider));
        var again = Assert.IsType<Handler>(Make(ServiceDescriptor.Scoped<Handler, Handler>(), first.ServiceProvider));
        var other = Assert.IsType<Handler>(Make(ServiceDescriptor.Scoped<Handler, Handler>(), second.ServiceProvider));

        Assert.Same(first.ServiceProvider.GetRequiredService<Dependency>(), made.Dependency);
        Assert.Same(made.Dependency, again.Dependency);
        Assert.Same(second.ServiceProvider.GetRequiredService<Dependency>(), other.Dependency);
        Assert.NotSame(made.Dependency, other.Dependency);
    }

    [Fact]
    public void HandlersTheContainerMustMake_AreLeftToTheScope()
    {
        using var root = Provider();
        using var scope = root.CreateScope();

        // Disposable: the scope disposes what it made; ambiguous or unsatisfiable constructors: the container's rules decide.
        Assert.Null(Make(ServiceDescriptor.Scoped<DisposableHandler, DisposableHandler>(), scope.ServiceProvider));
        Assert.Null(Make(ServiceDescriptor.Scoped<TwoEquallyLong, TwoEquallyLong>(), scope.ServiceProvider));
        Assert.Null(Make(ServiceDescriptor.Scoped<NeedsUnregistered, NeedsUnregistered>(), scope.ServiceProvider));

        // Singletons, instances and registrations under another service type are not this path's either.
        Assert.Null(Make(ServiceDescriptor.Singleton<Handler, Handler>(), scope.ServiceProvider));
        Assert.Null(Make(ServiceDescriptor.Scoped<object, Handler>(), scope.ServiceProvider));
    }
}
