namespace IdentityService.Protection;

/// <summary>
/// An entry of a cache that reads a value in use again before it expires: the value, when it was read (from the
/// injected <see cref="TimeProvider"/>), and whether a caller has already started reading it again.
/// </summary>
internal sealed class RefreshAheadEntry<T>(T value, DateTimeOffset loadedAt)
{
    private int _refreshing;

    public T Value { get; } = value;

    public DateTimeOffset LoadedAt { get; } = loadedAt;

    /// <summary>True for the one caller that should read the value again.</summary>
    public bool TryStartRefresh() => Interlocked.Exchange(ref _refreshing, 1) == 0;

    /// <summary>The read failed: a later caller may try again.</summary>
    public void RefreshFailed() => Volatile.Write(ref _refreshing, 0);
}
