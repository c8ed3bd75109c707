using IdentityService.Oidc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// The dispatcher keeps singleton filters and handlers with its handler lists; a filter of any other lifetime is
/// still asked in each request's scope, so what it answers may differ from one request to the next.
/// </summary>
public sealed class ServerDispatcherTests
{
    /// <summary>A per-request switch a scoped filter reads.</summary>
    private sealed class Switch
    {
        public bool On { get; set; }
    }

    private sealed class RequireSwitchOn(Switch state) : IOpenIddictServerHandlerFilter<ProcessRequestContext>
    {
        public ValueTask<bool> IsActiveAsync(ProcessRequestContext context) => new(state.On);
    }

    private sealed class RequireIssuerSet : IOpenIddictServerHandlerFilter<ProcessRequestContext>
    {
        public ValueTask<bool> IsActiveAsync(ProcessRequestContext context) => new(context.BaseUri is not null);
    }

    /// <summary>Counts its calls; one instance for the process.</summary>
    private sealed class Counting : IOpenIddictServerHandler<ProcessRequestContext>
    {
        public int Calls;

        public ValueTask HandleAsync(ProcessRequestContext context)
        {
            Interlocked.Increment(ref Calls);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class SwitchedCounting : IOpenIddictServerHandler<ProcessRequestContext>
    {
        public int Calls;

        public ValueTask HandleAsync(ProcessRequestContext context)
        {
            Interlocked.Increment(ref Calls);
            return ValueTask.CompletedTask;
        }
    }

    private static ServiceProvider Provider()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddScoped<Switch>();
        services.AddScoped<RequireSwitchOn>();
        services.AddSingleton<RequireIssuerSet>();
        services.AddSingleton<Counting>();
        services.AddSingleton<SwitchedCounting>();
        services.AddScoped<ServerDispatcher>();
        services.Configure<OpenIddictServerOptions>(options =>
        {
            // Only these two: OpenIddict's own handlers need the whole of its services.
            options.Handlers.Clear();
            options.Handlers.Add(OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessRequestContext>()
                .AddFilter<RequireIssuerSet>().UseSingletonHandler<Counting>().SetOrder(1).Build());
            options.Handlers.Add(OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessRequestContext>()
                .AddFilter<RequireIssuerSet>().AddFilter<RequireSwitchOn>().UseSingletonHandler<SwitchedCounting>().SetOrder(2).Build());
        });
        return services.BuildServiceProvider(validateScopes: true);
    }

    private static async Task DispatchAsync(ServiceProvider root, bool switchOn, Uri? baseUri)
    {
        using var scope = root.CreateScope();
        scope.ServiceProvider.GetRequiredService<Switch>().On = switchOn;
        var context = new ProcessRequestContext(new OpenIddictServerTransaction { Logger = root.GetRequiredService<ILogger<ServerDispatcherTests>>() }) { BaseUri = baseUri };
        await scope.ServiceProvider.GetRequiredService<ServerDispatcher>().DispatchAsync(context);
    }

    [Fact]
    public async Task AScopedFilter_IsAskedInEachRequestsScope_AndSingletonFiltersOnEveryEvent()
    {
        using var root = Provider();
        var issuer = new Uri("https://id.example/");

        await DispatchAsync(root, switchOn: true, issuer);
        await DispatchAsync(root, switchOn: false, issuer);
        await DispatchAsync(root, switchOn: true, issuer);
        await DispatchAsync(root, switchOn: true, baseUri: null);

        Assert.Equal(3, root.GetRequiredService<Counting>().Calls);
        Assert.Equal(2, root.GetRequiredService<SwitchedCounting>().Calls);
    }
}
