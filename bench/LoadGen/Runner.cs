using System.Diagnostics;

namespace LoadGen;

/// <summary>One measured run: a scenario against one target.</summary>
internal sealed record Result(
    string Scenario, string Target, string Unit, int Workers, double Seconds, long Ops, long Requests, long Errors,
    double OpsPerSecond, double P50Ms, double P99Ms, double CpuSeconds, double OpsPerCpuSecond, double PeakRssMiB, string? FirstError,
    double? DatabaseCpuSeconds = null, double? OpsPerCpuSecondWithDatabase = null);

/// <summary>N workers, each looping over an operation, for a warm-up and then a fixed measured window.</summary>
internal static class Runner
{
    /// <summary>
    /// Runs <paramref name="operation"/> (one op: returns how many HTTP requests it made; throws on failure)
    /// in <paramref name="workers"/> loops. Only ops that start inside the measured window count; the
    /// server's CPU is read at the window's edges and its VmHWM reset at the start.
    /// </summary>
    public static async Task<Result> RunAsync(string scenario, string target, string unit, int pid, int workers, TimeSpan warmup, TimeSpan duration,
        Func<int, long, Task<int>> operation)
    {
        var measuring = false;
        var stop = false;
        var latencies = new List<double>[workers];
        var requests = new long[workers];
        var errors = new long[workers];
        string? firstError = null;
        var tasks = new Task[workers];
        for (var w = 0; w < workers; w++)
        {
            var worker = w;
            latencies[worker] = new List<double>(1 << 14);
            tasks[worker] = Task.Run(async () =>
            {
                long iteration = 0;
                while (!Volatile.Read(ref stop))
                {
                    var counted = Volatile.Read(ref measuring);
                    var started = Stopwatch.GetTimestamp();
                    try
                    {
                        var made = await operation(worker, iteration++);
                        if (counted && Volatile.Read(ref measuring))
                        {
                            latencies[worker].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                            requests[worker] += made;
                        }
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        if (counted)
                        {
                            errors[worker]++;
                        }

                        Interlocked.CompareExchange(ref firstError, $"{e.GetType().Name}: {e.Message}", null);
                        await Task.Delay(10);
                    }
                }
            });
        }

        await Task.Delay(warmup);
        Proc.ResetPeak(pid);
        var cpu0 = Proc.CpuSeconds(pid);
        var storageCpu = Proc.StorageCpuSecondsOf(target);
        var db0 = storageCpu?.Invoke() ?? 0;
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref measuring, true);
        Console.WriteLine($"  (measuring {scenario} on {target})");
        await Task.Delay(duration);
        Volatile.Write(ref measuring, false);
        var seconds = clock.Elapsed.TotalSeconds;
        var cpu = Proc.CpuSeconds(pid) - cpu0;
        double? dbCpu = storageCpu is null ? null : Math.Round(storageCpu() - db0, 2);
        var peak = Proc.StatusMiB(pid, "VmHWM");
        Volatile.Write(ref stop, true);
        await Task.WhenAll(tasks);

        var all = latencies.SelectMany(l => l).ToArray();
        Array.Sort(all);
        long ops = all.Length;
        var result = new Result(scenario, target, unit, workers, Math.Round(seconds, 2), ops, requests.Sum(), errors.Sum(),
            Math.Round(ops / seconds, 1), Math.Round(Percentile(all, 0.50), 2), Math.Round(Percentile(all, 0.99), 2),
            Math.Round(cpu, 2), cpu > 0 ? Math.Round(ops / cpu, 1) : double.NaN, Math.Round(peak, 1),
            errors.Sum() > 0 ? firstError : null,
            dbCpu, dbCpu is { } d && cpu + d > 0 ? Math.Round(ops / (cpu + d), 1) : null);
        Console.WriteLine($"  {scenario,-34} {target,-12} {result.OpsPerSecond,9:F1} {unit}/s  p50 {result.P50Ms,8:F2} ms  p99 {result.P99Ms,8:F2} ms  " +
            $"cpu {result.CpuSeconds,6:F2} s  {result.OpsPerCpuSecond,9:F1} {unit}/CPU-s  " +
            (dbCpu is null ? "" : $"(+ database {dbCpu,5:F2} s: {result.OpsPerCpuSecondWithDatabase,8:F1} {unit}/CPU-s)  ") + $"peak {result.PeakRssMiB,6:F1} MiB  errors {result.Errors}" +
            (result.FirstError is null ? "" : $"  ({result.FirstError})"));
        return result;
    }

    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var index = (int)Math.Ceiling(p * sorted.Length) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Length - 1)];
    }
}
