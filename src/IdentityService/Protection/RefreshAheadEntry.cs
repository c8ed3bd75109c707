namespace IdentityService.Protection;

/// <summary>
/// An entry of a cache that reads a value in use again before it expires: the value, when it was read (from the
/// injected <see cref="TimeProvider"/>), and whether a caller has already started reading it again. A value read
/// again and found unchanged keeps its entry (<see cref="Renew"/>): nothing new is allocated that would outlive the
/// read, so 10,000 entries read again every few seconds do not churn the old generations of the heap.
/// </summary>
internal sealed class RefreshAheadEntry<T>(T value, DateTimeOffset loadedAt)
{
    private long _loadedAtTicks = loadedAt.UtcTicks;
    private int _refreshing;

    public T Value { get; } = value;

    /// <summary>When the value was last read from the database (or found unchanged there).</summary>
    public DateTimeOffset LoadedAt => new(Volatile.Read(ref _loadedAtTicks), TimeSpan.Zero);

    /// <summary>True for the one caller that should read the value again.</summary>
    public bool TryStartRefresh() => Interlocked.Exchange(ref _refreshing, 1) == 0;

    /// <summary>The read failed: a later caller may try again.</summary>
    public void RefreshFailed() => Volatile.Write(ref _refreshing, 0);

    /// <summary>The value was read again at <paramref name="readAt"/> and is unchanged: the entry is as fresh as that read.</summary>
    public void Renew(DateTimeOffset readAt)
    {
        Volatile.Write(ref _loadedAtTicks, readAt.UtcTicks);
        Volatile.Write(ref _refreshing, 0);
    }
}
