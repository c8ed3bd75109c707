using System.Collections.Concurrent;

namespace IdentityService.Oidc;

/// <summary>
/// One instance of each equal value for everyone that holds it (tenants' discovery documents, clients' permission
/// sets), keyed by the value's content. Bounded: past <see cref="Limit"/> keys, a value is kept by its holder alone.
/// Entries are never removed; the values shared are the few shapes many tenants have in common.
/// </summary>
internal sealed class SharedValues<TValue>
{
    internal const int Limit = 1_000;

    private readonly ConcurrentDictionary<string, TValue> _values = new(StringComparer.Ordinal);

    public bool TryGet(string key, out TValue value) => _values.TryGetValue(key, out value!);

    /// <summary>The shared value for <paramref name="key"/>: the one already kept, else <paramref name="value"/> (kept if there is room).</summary>
    public TValue Share(string key, TValue value) =>
        _values.TryGetValue(key, out var shared) ? shared : _values.Count < Limit ? _values.GetOrAdd(key, value) : value;
}
