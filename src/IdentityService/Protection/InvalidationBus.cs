namespace IdentityService.Protection;

/// <summary>Tells every replica that cached state changed (a policy, a tenant). Local only without Redis.</summary>
public interface IInvalidationBus
{
    Task PublishAsync(string channel, string message);

    void Subscribe(string channel, Action<string> handler);
}

internal sealed class LocalInvalidationBus : IInvalidationBus
{
    private readonly Dictionary<string, List<Action<string>>> _handlers = new(StringComparer.Ordinal);

    public Task PublishAsync(string channel, string message)
    {
        List<Action<string>> handlers;
        lock (_handlers)
        {
            handlers = _handlers.TryGetValue(channel, out var list) ? [.. list] : [];
        }

        foreach (var handler in handlers)
        {
            handler(message);
        }

        return Task.CompletedTask;
    }

    public void Subscribe(string channel, Action<string> handler)
    {
        lock (_handlers)
        {
            if (!_handlers.TryGetValue(channel, out var list))
            {
                _handlers[channel] = list = [];
            }

            list.Add(handler);
        }
    }
}
