using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace IdentityService.Protection.Redis;

public static class RedisSetup
{
    /// <summary>
    /// When <c>Redis:Configuration</c> is set, the protections' counters and blocks, the lockouts and the
    /// invalidation bus go through Redis, shared by every replica. See <see cref="RedisOptions"/> for what
    /// happens when Redis cannot be reached.
    /// </summary>
    public static IServiceCollection AddRedisWhenConfigured(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(RedisOptions.Section).Get<RedisOptions>() ?? new();
        if (string.IsNullOrWhiteSpace(options.Configuration))
        {
            return services;
        }

        ConfigurationOptions redis;
        try
        {
            redis = ConfigurationOptions.Parse(options.Configuration);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"Redis:Configuration is not a StackExchange.Redis configuration string: {e.Message}", e);
        }

        // Fail at start by default (see RedisOptions); an explicit abortConnect=false in the string is honoured.
        if (!options.Configuration.Contains("abortConnect", StringComparison.OrdinalIgnoreCase))
        {
            redis.AbortOnConnectFail = true;
        }

        services.AddSingleton(new RedisKeys(options.KeyPrefix));
        services.AddSingleton<IConnectionMultiplexer>(provider => Connect(redis, provider.GetRequiredService<ILoggerFactory>().CreateLogger("IdentityService.Redis")));
        services.Replace(ServiceDescriptor.Singleton<IProtectionStore, RedisProtectionStore>());
        services.Replace(ServiceDescriptor.Singleton<ILockoutStore, RedisLockoutStore>());
        services.Replace(ServiceDescriptor.Singleton<IInvalidationBus, RedisInvalidationBus>());

        // Connect while starting, not on the first sign-in.
        services.AddHostedService<RedisConnector>();
        services.AddExceptionHandler<RedisUnavailableHandler>();
        services.AddHealthChecks().AddCheck<RedisReadyCheck>("redis", tags: ["ready"]);
        return services;
    }

    private static ConnectionMultiplexer Connect(ConfigurationOptions options, ILogger logger)
    {
        var endpoints = string.Join(", ", options.EndPoints.Select(e => e.ToString()));
        ConnectionMultiplexer connection;
        try
        {
            connection = ConnectionMultiplexer.Connect(options);
        }
        catch (RedisConnectionException e)
        {
            throw new InvalidOperationException(
                $"Redis:Configuration: no Redis answers at {endpoints} ({e.Message}). Fix the address, start Redis, or add abortConnect=false to start without it.", e);
        }

        connection.ConnectionFailed += (_, e) => logger.LogError(e.Exception, "The connection to Redis at {Endpoint} failed ({Failure}): what needs Redis answers 503 until it is back.", e.EndPoint, e.FailureType);
        connection.ConnectionRestored += (_, e) => logger.LogWarning("The connection to Redis at {Endpoint} is back.", e.EndPoint);
        if (!connection.IsConnected)
        {
            logger.LogError("Redis at {Endpoints} does not answer yet (abortConnect=false): what needs Redis answers 503 until it does.", endpoints);
        }

        return connection;
    }

    /// <summary>Makes the connection while the host starts, so that a wrong address stops the start.</summary>
    private sealed class RedisConnector(IServiceProvider services) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            services.GetRequiredService<IConnectionMultiplexer>();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Redis unreachable while running: 503 with Retry-After, not a 500, and nothing runs without its protections.</summary>
    private sealed class RedisUnavailableHandler(IProblemDetailsService problems) : IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
        {
            if (exception is not (RedisConnectionException or RedisTimeoutException))
            {
                return false;
            }

            http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            http.Response.Headers.RetryAfter = "5";
            await problems.TryWriteAsync(new ProblemDetailsContext
            {
                HttpContext = http,
                Exception = exception,
                ProblemDetails = { Status = StatusCodes.Status503ServiceUnavailable, Title = "Temporarily unavailable", Type = "https://tools.ietf.org/html/rfc9110#section-15.6.4" },
            });
            return true;
        }
    }

    /// <summary>Ready only while Redis answers.</summary>
    private sealed class RedisReadyCheck(IConnectionMultiplexer redis) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                await redis.GetDatabase().PingAsync();
                return HealthCheckResult.Healthy();
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                return HealthCheckResult.Unhealthy("Redis does not answer.", e);
            }
        }
    }
}
