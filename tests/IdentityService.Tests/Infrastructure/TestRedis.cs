using StackExchange.Redis;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// The Redis server named by <c>TEST_REDIS</c> (<c>test.sh</c> starts one and sets it). Each test uses its own key
/// prefix and removes only its own keys.
/// </summary>
public static class TestRedis
{
    public static string Configuration => Environment.GetEnvironmentVariable("TEST_REDIS") is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException("TEST_REDIS is not set: test.sh (and so .ci/run) starts redis-server and sets it, e.g. TEST_REDIS=127.0.0.1:6379.");

    public static string NewPrefix() => $"is-test:{Guid.NewGuid():N}:";

    /// <summary>Points a factory at the test Redis under a prefix (shared by the replicas of one test).</summary>
    public static T WithRedis<T>(this T factory, string prefix)
        where T : IdentityServiceFactory
    {
        factory.Settings["Redis:Configuration"] = Configuration;
        factory.Settings["Redis:KeyPrefix"] = prefix;
        return factory;
    }

    /// <summary>Deletes the keys under a prefix.</summary>
    public static async Task FlushAsync(string prefix)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(Configuration);
        var db = redis.GetDatabase();
        foreach (var endpoint in redis.GetEndPoints())
        {
            await foreach (var key in redis.GetServer(endpoint).KeysAsync(pattern: prefix + "*"))
            {
                await db.KeyDeleteAsync(key);
            }
        }
    }
}
