using System.Diagnostics;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Microsoft.AspNetCore.Identity;

// bench/Hasher [--quick | --cpu-only] [--threads N] OUT.json: the mean cost of one VerifyHashedPassword with the service's
// default options (Passwords:HashIterations), as its UserManager uses it. --quick times a plain loop instead of BenchmarkDotNet; --cpu-only only
// takes the thread-CPU figure (3 s), which LoadGen runs just before and after the sign-in scenario.
var quick = args.Contains("--quick");
var cpuOnly = args.Contains("--cpu-only");
var output = args.Length > 0 && !args[^1].StartsWith("--", StringComparison.Ordinal) && (args.Length < 2 || args[^2] != "--threads") ? args[^1] : "hasher.json";
double meanNs;
string method;
if (cpuOnly)
{
    meanNs = 0;
    method = "thread CPU loop";
}
else if (quick)
{
    var bench = new VerifyPassword();
    bench.Setup();
    bench.Verify();
    var watch = Stopwatch.StartNew();
    var n = 0;
    while (watch.Elapsed < TimeSpan.FromSeconds(2) || n < 10)
    {
        bench.Verify();
        n++;
    }

    meanNs = watch.Elapsed.TotalNanoseconds / n;
    method = $"stopwatch loop, {n} verifications";
}
else
{
    var config = DefaultConfig.Instance
        .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
        .WithOptions(ConfigOptions.DisableOptimizationsValidator);
    var summary = BenchmarkRunner.Run<VerifyPassword>(config);
    var report = summary.Reports.Single();
    meanNs = report.ResultStatistics?.Mean ?? throw new InvalidOperationException("BenchmarkDotNet produced no result.");
    method = "BenchmarkDotNet 0.15.8 ShortRun, in process";
}

// CPU time per verification (the loop thread's user+system time): what "per CPU-second" means for the
// servers too, and unlike BenchmarkDotNet's wall-clock mean it is not inflated when other work shares the
// cores. The thread's own clock leaves out what the runtime does beside it (tiered JIT, GC, BenchmarkDotNet),
// which made the process-wide figure move by a quarter between runs.
// --threads N: N loops at once, each on its own thread, and the CPU per verification over all of them. The sign-in
// scenario keeps every core busy hashing, and a hash costs more CPU time when every core works (measured here:
// 69 ms with both cores hashing against 61 ms with one, means of a few runs): the ceiling that the hash sets for
// sign-ins on a loaded machine is the rate with one loop per core.
var threads = int.TryParse(args.SkipWhile(a => a != "--threads").Skip(1).FirstOrDefault(), out var requested) && requested > 0 ? requested : 1;
var loops = Enumerable.Range(0, threads).Select(_ => new Thread(state => ((CpuLoop)state!).Run())).ToList();
var states = loops.ConvertAll(_ => new CpuLoop());
var wall = Stopwatch.StartNew();
for (var i = 0; i < loops.Count; i++)
{
    loops[i].Start(states[i]);
}

loops.ForEach(t => t.Join());
var count = states.Sum(s => s.Count);
var cpuMicroseconds = states.Sum(s => s.CpuSeconds) * 1e6 / count;
if (cpuOnly)
{
    meanNs = wall.Elapsed.TotalNanoseconds * threads / count;
}

var options = VerifyPassword.Options;
var result = new
{
    iterations = options.IterationCount,
    algorithm = $"PasswordHasher<T> {options.CompatibilityMode}, PBKDF2 HMAC-SHA512, {options.IterationCount} iterations",
    method,
    threads,
    meanMicroseconds = meanNs / 1000,
    cpuMicroseconds,
    verificationsPerCpuSecond = 1e6 / cpuMicroseconds,
};
File.WriteAllText(output, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine($"hasher: {result.meanMicroseconds / 1000:F2} ms per VerifyHashedPassword ({method}); {cpuMicroseconds / 1000:F2} ms of CPU = {result.verificationsPerCpuSecond:F1}/CPU-s on {threads} thread(s)");

public class VerifyPassword
{
    public static readonly PasswordHasherOptions Options = new() { IterationCount = new IdentityService.Users.PasswordHashingOptions().HashIterations };

    private readonly PasswordHasher<object> _hasher = new(Microsoft.Extensions.Options.Options.Create(Options));
    private readonly object _user = new();
    private string _hash = "";

    [GlobalSetup]
    public void Setup() => _hash = _hasher.HashPassword(_user, "correct horse battery staple");

    [Benchmark]
    public PasswordVerificationResult Verify() => _hasher.VerifyHashedPassword(_user, _hash, "correct horse battery staple");
}

/// <summary>One measuring loop: verifications for 3 s (at least 10), and the CPU its own thread spent on them.</summary>
internal sealed class CpuLoop
{
    public int Count { get; private set; }

    public double CpuSeconds { get; private set; }

    public void Run()
    {
        var bench = new VerifyPassword();
        bench.Setup();
        var start = CpuTime.ThreadSeconds();
        var wall = Stopwatch.StartNew();
        while (wall.Elapsed < TimeSpan.FromSeconds(3) || Count < 10)
        {
            bench.Verify();
            Count++;
        }

        CpuSeconds = CpuTime.ThreadSeconds() - start;
    }
}

internal static class CpuTime
{
    /// <summary>
    /// The calling thread's CPU time (user + system), from CLOCK_THREAD_CPUTIME_ID: only the loop's own work,
    /// not the JIT, GC or BenchmarkDotNet threads that the process's figure also counted.
    /// </summary>
    public static double ThreadSeconds()
    {
        if (clock_gettime(ThreadCpuClock, out var time) != 0)
        {
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed.");
        }

        return time.Seconds + time.Nanoseconds / 1e9;
    }

    private const int ThreadCpuClock = 3;

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int clock_gettime(int clock, out TimeSpec time);

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
