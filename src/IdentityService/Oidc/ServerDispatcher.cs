using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using OpenIddict.Server;

namespace IdentityService.Oidc;

/// <summary>
/// OpenIddict's event dispatcher, with the same semantics (handlers in their order, each behind its filters,
/// stopping once the request is handled, skipped or rejected), but over a list of the handlers of the event's
/// own context type, made once per handler list. OpenIddict's dispatcher walks every one of its ~400 handler
/// descriptors on every event, through an async iterator, and a token request raises about fifteen events.
/// The handler list is OpenIddict's, shared by every tenant's options (<see cref="TenantServerOptions"/>), so
/// the per-type lists are made once for the process.
/// <para>
/// A scoped handler is made by a constructor call compiled when its event's list is made, with its dependencies from
/// the request's scope (<see cref="ScopedHandlers"/>), not resolved as a service of the scope: the scope keeps every
/// service it resolves in a dictionary, and the fifty-odd handlers of a token request made that dictionary grow
/// through six sizes on every request, a sixth of all the bytes a client_credentials grant allocated.
/// </para>
/// </summary>
internal sealed class ServerDispatcher(
    ILogger<ServerDispatcher> logger,
    IOptionsMonitor<OpenIddictServerOptions> options,
    IServiceProvider provider) : IOpenIddictServerDispatcher
{
    public async ValueTask DispatchAsync<TContext>(TContext context) where TContext : OpenIddictServerEvents.BaseContext
    {
        ArgumentNullException.ThrowIfNull(context);

        foreach (var entry in HandlersOf<TContext>.In(options.CurrentValue.Handlers, provider))
        {
            var active = IsActiveAsync(entry.Filters, provider, context);
            if (!(active.IsCompletedSuccessfully ? active.Result : await active))
            {
                continue;
            }

            var handler = entry.Handler(provider);
            try
            {
                await handler.HandleAsync(context);
            }
            catch (Exception exception) when (logger.IsEnabled(LogLevel.Debug))
            {
                logger.LogDebug(exception, "The event handler {Handler} failed on {Context}.", handler.GetType().FullName, typeof(TContext).FullName);
                throw;
            }

            if (context is OpenIddictServerEvents.BaseRequestContext { IsRequestHandled: true } or OpenIddictServerEvents.BaseRequestContext { IsRequestSkipped: true }
                or OpenIddictServerEvents.BaseValidatingContext { IsRejected: true })
            {
                return;
            }
        }
    }

    private static ValueTask<bool> IsActiveAsync<TContext>(Func<IServiceProvider, IOpenIddictServerHandlerFilter<TContext>>[] filters, IServiceProvider provider, TContext context)
        where TContext : OpenIddictServerEvents.BaseContext
    {
        for (var index = 0; index < filters.Length; index++)
        {
            var active = filters[index](provider).IsActiveAsync(context);
            if (!active.IsCompletedSuccessfully)
            {
                return RestAsync(filters, provider, context, active, index);
            }

            if (!active.Result)
            {
                return new(false);
            }
        }

        return new(true);
    }

    // A filter that did not answer at once: the rest of the filters are awaited in turn. Static, with its state passed
    // in: a local function capturing the caller's variables made the caller allocate a closure on every call.
    private static async ValueTask<bool> RestAsync<TContext>(Func<IServiceProvider, IOpenIddictServerHandlerFilter<TContext>>[] filters, IServiceProvider provider, TContext context, ValueTask<bool> pending, int from)
        where TContext : OpenIddictServerEvents.BaseContext
    {
        if (!await pending)
        {
            return false;
        }

        for (var index = from + 1; index < filters.Length; index++)
        {
            if (!await filters[index](provider).IsActiveAsync(context))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A handler of an event: how each of its filters is had (a singleton kept, any other resolved from the request's
    /// scope), and how its handler is had. A singleton handler is resolved on its first use (not before: its filters may keep it from ever
    /// running, and its dependencies from ever being registered) and kept; a scoped one is made by the factory of
    /// <see cref="ScopedHandlers"/> when it has one, or resolved from the request's scope.
    /// </summary>
    private sealed class Entry<TContext>(OpenIddictServerHandlerDescriptor descriptor, Func<IServiceProvider, IOpenIddictServerHandlerFilter<TContext>>[] filters, Func<IServiceProvider, object>? create)
        where TContext : OpenIddictServerEvents.BaseContext
    {
        private IOpenIddictServerHandler<TContext>? _singleton = descriptor.ServiceDescriptor.ImplementationInstance as IOpenIddictServerHandler<TContext>;

        public OpenIddictServerHandlerDescriptor Descriptor { get; } = descriptor;

        public Func<IServiceProvider, IOpenIddictServerHandlerFilter<TContext>>[] Filters { get; } = filters;

        public IOpenIddictServerHandler<TContext> Handler(IServiceProvider provider)
        {
            if (_singleton is { } kept)
            {
                return kept;
            }

            var handler = create?.Invoke(provider) as IOpenIddictServerHandler<TContext>
                ?? provider.GetService(Descriptor.ServiceDescriptor.ServiceType) as IOpenIddictServerHandler<TContext>
                ?? throw new InvalidOperationException($"The OpenIddict handler {Descriptor.ServiceDescriptor.ServiceType} is not registered.");
            if (Descriptor.ServiceDescriptor.Lifetime == ServiceLifetime.Singleton)
            {
                _singleton = handler;
            }

            return handler;
        }
    }

    /// <summary>
    /// The handlers of one context type, in OpenIddict's order (the list is sorted when the options are built), each
    /// with its factory and its filters: made once per handler list, on the first event of that type. A filter that
    /// two scopes resolve as the same instance is a singleton (OpenIddict registers its own filters so) and is kept;
    /// any other is resolved from the request's scope on every event, as before.
    /// </summary>
    private static class HandlersOf<TContext> where TContext : OpenIddictServerEvents.BaseContext
    {
        private static readonly ConditionalWeakTable<List<OpenIddictServerHandlerDescriptor>, Entry<TContext>[]> Lists = new();

        public static Entry<TContext>[] In(List<OpenIddictServerHandlerDescriptor> handlers, IServiceProvider provider)
        {
            if (Lists.TryGetValue(handlers, out var list))
            {
                return list;
            }

            return Lists.GetValue(handlers, all => Make(all, provider));
        }

        private static Entry<TContext>[] Make(List<OpenIddictServerHandlerDescriptor> all, IServiceProvider provider)
        {
            var isService = provider.GetService<IServiceProviderIsService>();
            using var probe = provider.GetRequiredService<IServiceScopeFactory>().CreateScope();
            var getters = new Dictionary<Type, Func<IServiceProvider, IOpenIddictServerHandlerFilter<TContext>>>();
            Func<IServiceProvider, IOpenIddictServerHandlerFilter<TContext>> Getter(Type type)
            {
                if (!getters.TryGetValue(type, out var getter))
                {
                    var instance = provider.GetService(type);
                    getter = instance is IOpenIddictServerHandlerFilter<TContext> kept && ReferenceEquals(instance, probe.ServiceProvider.GetService(type))
                        ? _ => kept
                        : scope => scope.GetService(type) as IOpenIddictServerHandlerFilter<TContext>
                            ?? throw new InvalidOperationException($"The OpenIddict filter {type} is not registered.");
                    getters[type] = getter;
                }

                return getter;
            }

            return [.. all
                .Where(d => d.ContextType == typeof(TContext))
                .Select(d => new Entry<TContext>(d, [.. d.FilterTypes.Select(Getter)], ScopedHandlers.FactoryFor(d.ServiceDescriptor, isService)))];
        }
    }

    /// <summary>
    /// Factories of scoped handlers that skip the scope's bookkeeping. A handler type qualifies when it is registered as itself,
    /// is not disposable (the scope would have disposed it) and has one longest public constructor, whose
    /// parameters all resolve from the container without defaults: the constructor the container would pick. Any
    /// other handler is resolved from the scope as before. Handlers keep no state of their own between calls, so a
    /// new instance per call behaves as the scope's one instance per request did.
    /// </summary>
    internal static class ScopedHandlers
    {
        /// <summary>The factory of a handler (called with the request's scope), or null when the container must make it.</summary>
        public static Func<IServiceProvider, object>? FactoryFor(ServiceDescriptor descriptor, IServiceProviderIsService? isService)
        {
            if (descriptor.Lifetime != ServiceLifetime.Scoped || descriptor.ImplementationType is not { } type || descriptor.ServiceType != type
                || isService is null || typeof(IDisposable).IsAssignableFrom(type) || typeof(IAsyncDisposable).IsAssignableFrom(type))
            {
                return null;
            }

            var constructors = type.GetConstructors();
            if (constructors.Length == 0)
            {
                return null;
            }

            var longest = constructors.Max(c => c.GetParameters().Length);
            var candidates = constructors.Where(c => c.GetParameters().Length == longest).ToArray();
            if (candidates.Length != 1)
            {
                return null;
            }

            var parameters = candidates[0].GetParameters();
            if (parameters.Any(p => p.HasDefaultValue || !isService.IsService(p.ParameterType)))
            {
                return null;
            }

            var services = Expression.Parameter(typeof(IServiceProvider), "services");
            var resolve = typeof(ServiceProviderServiceExtensions).GetMethod(nameof(ServiceProviderServiceExtensions.GetRequiredService), BindingFlags.Public | BindingFlags.Static, [typeof(IServiceProvider), typeof(Type)])!;
            var arguments = parameters.Select(p => Expression.Convert(Expression.Call(resolve, services, Expression.Constant(p.ParameterType)), p.ParameterType));
            return Expression.Lambda<Func<IServiceProvider, object>>(Expression.New(candidates[0], arguments), services).Compile();
        }
    }
}
