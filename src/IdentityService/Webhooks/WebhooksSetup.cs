namespace IdentityService.Webhooks;

public static class WebhooksSetup
{
    /// <summary>The webhook dispatcher, and its HTTP client: no redirects, and outside Development public addresses only.</summary>
    public static IServiceCollection AddWebhooks(this IServiceCollection services)
    {
        services.AddSingleton<WebhookDispatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<WebhookDispatcher>());
        services.AddHttpClient(WebhookDispatcher.HttpClientName, client => client.DefaultRequestHeaders.UserAgent.ParseAdd("IdentityService-Webhooks/1"))
            .ConfigurePrimaryHttpMessageHandler(OutboundHandler);
        return services;
    }

    /// <summary>
    /// The handler of a client that calls URLs tenants give (webhooks, clients' jwks_uri, back-channel logout): no
    /// redirects, no cookies, and outside Development only public addresses, checked at each connection, and never
    /// through the machine's proxy (HTTPS_PROXY), whose own address would be the only one checked.
    /// </summary>
    internal static SocketsHttpHandler OutboundHandler(IServiceProvider services)
    {
        var handler = new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        if (!services.GetRequiredService<IHostEnvironment>().IsDevelopment())
        {
            handler.UseProxy = false;
            handler.ConnectCallback = Protection.PublicAddresses.ConnectPublicAsync;
        }

        return handler;
    }
}
