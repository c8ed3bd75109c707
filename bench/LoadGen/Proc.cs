using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;

namespace LoadGen;

/// <summary>A server process's CPU time, RSS and (for .NET) managed heap, read from outside.</summary>
internal static class Proc
{
    public static int ClockTicks { get; set; } = 100;

    /// <summary>utime + stime of the process (all its threads), in seconds.</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state): utime is field 14, stime field 15.
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / (double)ClockTicks;
    }

    /// <summary>
    /// Each live thread's CPU time in nanoseconds, from its schedstat: precise enough to charge single requests
    /// (utime and stime count whole clock ticks). Compare two readings with <see cref="CpuNanosecondsSplit"/>.
    /// </summary>
    public static Dictionary<string, long> ThreadCpuNanoseconds(int pid)
    {
        // Keyed by thread id and name, so that a reading can tell the runtime's JIT worker apart (JitThreadName).
        var threads = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                var name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
                threads[$"{Path.GetFileName(task)} {name}"] = long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0]);
            }
            catch (IOException)
            {
                // The thread ended between the listing and the read.
            }
        }

        return threads;
    }

    /// <summary>
    /// The name .NET gives its tiered-compilation worker, as the kernel keeps it (15 characters): the thread that
    /// recompiles hot methods in the background, whatever request made them hot.
    /// </summary>
    public const string JitThreadName = ".NET Tiered Com";

    /// <summary>
    /// The CPU time spent between two readings by the threads alive at the second (a thread that ended in
    /// between takes its time with it: the thread pool retiring idle threads would otherwise show as negative time),
    /// split into the JIT worker's (<see cref="JitThreadName"/>) and every other thread's.
    /// </summary>
    public static (long Work, long Jit) CpuNanosecondsSplit(Dictionary<string, long> before, Dictionary<string, long> after)
    {
        long work = 0, jit = 0;
        foreach (var (thread, nanoseconds) in after)
        {
            var spent = nanoseconds - before.GetValueOrDefault(thread);
            if (thread.EndsWith(" " + JitThreadName, StringComparison.Ordinal))
            {
                jit += spent;
            }
            else
            {
                work += spent;
            }
        }

        return (work, jit);
    }

    /// <summary>
    /// The command name of a database server whose processes' CPU is measured with the service's (postgres for a
    /// PostgreSQL run: the server and its backends on this machine); null when the database is in the service.
    /// </summary>
    public static string? DatabaseProcess { get; set; }

    /// <summary>The process of the peer's own storage (its Redis server, bench/run.sh --peer-store redis); 0 when it keeps its grants in memory.</summary>
    public static int PeerDatabasePid { get; set; }

    /// <summary>The CPU of <paramref name="target"/>'s storage where that runs in processes of its own, or null (a database inside the target's process, or none).</summary>
    public static Func<double>? StorageCpuSecondsOf(string target) => target switch
    {
        "ours" when DatabaseProcess is not null => DatabaseCpuSeconds,
        "peer" when PeerDatabasePid > 0 => () => CpuSeconds(PeerDatabasePid),
        _ => null,
    };

    /// <summary>utime + stime of every live process named <see cref="DatabaseProcess"/>, in seconds.</summary>
    public static double DatabaseCpuSeconds()
    {
        long ticks = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var open = stat.IndexOf('(');
                var close = stat.LastIndexOf(')');
                if (stat[(open + 1)..close] != DatabaseProcess)
                {
                    continue;
                }

                var fields = stat[(close + 2)..].Split(' ');
                ticks += long.Parse(fields[11]) + long.Parse(fields[12]);
            }
            catch (IOException)
            {
                // The process ended between the listing and the read.
            }
        }

        return ticks / (double)ClockTicks;
    }

    /// <summary>A line of /proc/pid/status in MiB (VmHWM, VmRSS).</summary>
    public static double StatusMiB(int pid, string key)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
            {
                return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0]) / 1024.0;
            }
        }

        return double.NaN;
    }

    /// <summary>Resets VmHWM to the current RSS, so that each scenario's peak is its own.</summary>
    public static void ResetPeak(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/clear_refs", "5");
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// The managed heap of a .NET process after a full, induced GC (as dotnet-gcdump triggers it),
    /// from the runtime's gc-heap-size counter over EventPipe. Null when it cannot be read.
    /// </summary>
    public static double? ManagedHeapMiB(int pid)
    {
        try
        {
            var client = new DiagnosticsClient(pid);
            var gc = new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, (long)ClrTraceEventParser.Keywords.GCHeapCollect);
            using (var session = client.StartEventPipeSession([gc], requestRundown: false))
            {
                Thread.Sleep(1500);
                session.Stop();
            }

            var counters = new EventPipeProvider("System.Runtime", EventLevel.Informational, (long)EventKeywords.All,
                new Dictionary<string, string> { ["EventCounterIntervalSec"] = "1" });
            using var counterSession = client.StartEventPipeSession([counters], requestRundown: false);
            double? heap = null;
            using var source = new EventPipeEventSource(counterSession.EventStream);
            source.Dynamic.All += e =>
            {
                if (e.EventName != "EventCounters" || heap is not null)
                {
                    return;
                }

                if (e.PayloadValue(0) is IDictionary<string, object> payload && payload.TryGetValue("Payload", out var inner)
                    && inner is IDictionary<string, object> fields && fields.TryGetValue("Name", out var name) && (string)name == "gc-heap-size")
                {
                    var value = fields.TryGetValue("Mean", out var mean) ? mean : fields["Increment"];
                    heap = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);
                    counterSession.Stop();
                }
            };
            var processing = Task.Run(source.Process);
            if (!processing.Wait(TimeSpan.FromSeconds(8)))
            {
                counterSession.Stop();
            }

            return heap;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"managed heap of {pid}: {e.GetType().Name}: {e.Message}");
            return null;
        }
    }
}
