using System.Diagnostics;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Microsoft.AspNetCore.Identity;

// bench/Hasher [--quick] OUT.json: the mean cost of one VerifyHashedPassword with the default options,
// as the service's UserManager uses it. --quick times a plain loop instead of BenchmarkDotNet.
var quick = args.Contains("--quick");
var output = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "hasher.json";
double meanNs;
string method;
if (quick)
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

// CPU time per verification (the process's user+system time over a loop): what "per CPU-second" means
// for the servers too, and unlike BenchmarkDotNet's wall-clock mean it is not inflated when other work
// shares the cores.
var cpuBench = new VerifyPassword();
cpuBench.Setup();
var cpuStart = CpuTime.ThreadSeconds();
var wall = Stopwatch.StartNew();
var count = 0;
while (wall.Elapsed < TimeSpan.FromSeconds(3) || count < 10)
{
    cpuBench.Verify();
    count++;
}

var cpuMicroseconds = (CpuTime.ThreadSeconds() - cpuStart) * 1e6 / count;
var options = new PasswordHasherOptions();
var result = new
{
    algorithm = $"PasswordHasher<T> {options.CompatibilityMode}, PBKDF2 HMAC-SHA512, {options.IterationCount} iterations",
    method,
    meanMicroseconds = meanNs / 1000,
    cpuMicroseconds,
    verificationsPerCpuSecond = 1e6 / cpuMicroseconds,
};
File.WriteAllText(output, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine($"hasher: {result.meanMicroseconds / 1000:F2} ms per VerifyHashedPassword ({method}); {cpuMicroseconds / 1000:F2} ms of CPU = {result.verificationsPerCpuSecond:F1}/CPU-s");

public class VerifyPassword
{
    private readonly PasswordHasher<object> _hasher = new();
    private readonly object _user = new();
    private string _hash = "";

    [GlobalSetup]
    public void Setup() => _hash = _hasher.HashPassword(_user, "correct horse battery staple");

    [Benchmark]
    public PasswordVerificationResult Verify() => _hasher.VerifyHashedPassword(_user, _hash, "correct horse battery staple");
}

internal static class CpuTime
{
    /// <summary>This process's CPU time (user + system, all threads; the loop's thread does nearly all of it).</summary>
    public static double ThreadSeconds()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }
}
