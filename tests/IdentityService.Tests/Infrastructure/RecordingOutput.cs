using System.Collections.Concurrent;

namespace IdentityService.Tests.Infrastructure;

/// <summary>A test's output (where the service's warnings go), with every line also kept for the test to read.</summary>
public sealed class RecordingOutput(ITestOutputHelper inner) : ITestOutputHelper
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public void WriteLine(string message)
    {
        Lines.Enqueue(message);
        inner.WriteLine(message);
    }

    public void WriteLine(string format, params object[] args) => WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
}
