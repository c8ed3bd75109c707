using StackExchange.Redis;

namespace IdentityService.Protection.Redis;

/// <summary>
/// Invalidations through Redis pub/sub: a message published by one replica reaches the handlers of every
/// replica, this one included. One Redis subscription per channel; its handlers run in the order they subscribed.
/// </summary>
internal sealed class RedisInvalidationBus(IConnectionMultiplexer redis, RedisKeys keys, ILogger<RedisInvalidationBus> logger) : IInvalidationBus
{
    private readonly Dictionary<string, List<Action<string>>> _handlers = new(StringComparer.Ordinal);

    /// <remarks>
    /// The change is already stored when it is published: a Redis outage does not fail it. It is logged, and
    /// the other replicas see the change when their cached copy expires.
    /// </remarks>
    public async Task PublishAsync(string channel, string message)
    {
        try
        {
            await redis.GetSubscriber().PublishAsync(keys.Channel(channel), message);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            logger.LogError(e, "Publishing {Message} on {Channel} through Redis failed: other replicas keep their cached copy until it expires.", message, channel);
            Dispatch(channel, message);
        }
    }

    public void Subscribe(string channel, Action<string> handler)
    {
        bool first;
        lock (_handlers)
        {
            first = !_handlers.TryGetValue(channel, out var list);
            if (first)
            {
                _handlers[channel] = list = [];
            }

            list!.Add(handler);
        }

        if (first)
        {
            try
            {
                redis.GetSubscriber().Subscribe(keys.Channel(channel), (_, message) => Dispatch(channel, message.ToString()));
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // The multiplexer keeps the subscription and makes it when the connection is back.
                logger.LogError(e, "Subscribing to {Channel} through Redis failed; it is retried on reconnection.", channel);
            }
        }
    }

    private void Dispatch(string channel, string message)
    {
        Action<string>[] handlers;
        lock (_handlers)
        {
            handlers = _handlers.TryGetValue(channel, out var list) ? [.. list] : [];
        }

        foreach (var handler in handlers)
        {
            try
            {
                handler(message);
            }
            catch (Exception e)
            {
                logger.LogError(e, "A handler of {Channel} failed on {Message}.", channel, message);
            }
        }
    }
}
