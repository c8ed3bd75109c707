using System.Collections.Concurrent;

namespace IdentityService.Diagnostics;

/// <summary>
/// Sends a background service starts and waits for when the service stops (a deploy's SIGTERM): at
/// <see cref="StopAsync"/> the retries waiting stop waiting (<see cref="WaitAsync"/> answers false, for a last attempt
/// at once), and the stop waits for every send under way until the host's shutdown timeout, when
/// <see cref="Abandoned"/> gives them up. Used by the mailer and the back-channel logout sender, whose messages
/// wait in memory, and by the webhook dispatcher, whose attempts under way are then answered and kept rather than
/// made again by another replica.
/// </summary>
public sealed class DrainedSends(TimeProvider time)
{
    // Never disposed: they own no timer, and a host may stop a service again after disposing it.
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abandoned = new();
    private readonly ConcurrentDictionary<long, Task> _running = new();
    private long _next;

    /// <summary>Whether the service has begun to stop: no retry is planned past the attempt under way.</summary>
    public bool Stopping => _stopping.IsCancellationRequested;

    /// <summary>Cancelled when the host's shutdown timeout ends the wait: what is under way is given up.</summary>
    public CancellationToken Abandoned => _abandoned.Token;

    /// <summary>Keeps <paramref name="send"/> (a task that never throws) until it ends, for <see cref="StopAsync"/> to wait for.</summary>
    public void Track(Task send)
    {
        var id = Interlocked.Increment(ref _next);
        _running[id] = send;
        _ = send.ContinueWith(_ => _running.TryRemove(id, out Task? _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Waits a retry's delay; false when the service began to stop meanwhile (or had): then try at once, once.</summary>
    public async Task<bool> WaitAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, time, _stopping.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Stops: the retries waiting stop waiting; <paramref name="closeQueue"/>, when given, closes the service's queue in
    /// memory (what it holds is still read); then <paramref name="stopService"/> (the background service's own stop,
    /// which returns once that queue is read to the end), then every send under way, all until
    /// <paramref name="cancellationToken"/>.
    /// </summary>
    public async Task StopAsync(Func<Task> stopService, CancellationToken cancellationToken, Action? closeQueue = null)
    {
        await _stopping.CancelAsync();
        closeQueue?.Invoke();
        await using var abandon = cancellationToken.Register(() => _abandoned.Cancel());
        await stopService();
        while (_running.Values.ToArray() is { Length: > 0 } running)
        {
            await Task.WhenAll(running);
        }
    }
}
