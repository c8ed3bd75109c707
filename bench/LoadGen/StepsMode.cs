using System.Diagnostics;

namespace LoadGen;

/// <summary>
/// <c>--steps N</c>: N sign-ins one at a time on each target, with the server's CPU (summed per thread) charged to each
/// of the sign-in's requests, and then one refresh of its token charged apart: where a sign-in's CPU goes beside the hash.
/// The time of .NET's tiered-compilation worker is shown apart (background JIT): a few requests a second leave methods
/// reaching their call counts for minutes, and that thread's recompiling was seen taking a quarter of the service's
/// samples under this mode (perf, 30 s after a 30 s warm-up), which read as a second hash in the password POST.
/// </summary>
internal static class StepsMode
{
    public static async Task RunAsync(Target?[] targets, int stepRuns, int users)
    {
        foreach (var target in targets)
        {
            if (target is null)
            {
                continue;
            }

            Console.WriteLine($"  (measuring steps on {target.Name})");
            var charged = new SortedDictionary<string, long>(StringComparer.Ordinal);
            var jit = new SortedDictionary<string, long>(StringComparer.Ordinal);
            var elapsed = new SortedDictionary<string, TimeSpan>(StringComparer.Ordinal);
            long refreshCpu = 0, refreshJit = 0;
            var refreshWall = TimeSpan.Zero;
            for (var i = 0; i < stepRuns; i++)
            {
                var mark = Proc.ThreadCpuNanoseconds(target.Pid);
                var clock = Stopwatch.StartNew();
                var answer = await Flows.SignInAsync(target, "bench", "web", $"user{i % users}@bench.test", name =>
                {
                    var (work, compiling) = Proc.CpuNanosecondsSplit(mark, Proc.ThreadCpuNanoseconds(target.Pid));
                    charged[name] = charged.GetValueOrDefault(name) + work;
                    jit[name] = jit.GetValueOrDefault(name) + compiling;
                    elapsed[name] = elapsed.GetValueOrDefault(name) + clock.Elapsed;
                    clock.Restart();
                    mark = Proc.ThreadCpuNanoseconds(target.Pid);
                });

                // Then one refresh of the sign-in's refresh token, charged apart (it is not part of a sign-in).
                mark = Proc.ThreadCpuNanoseconds(target.Pid);
                clock.Restart();
                await Flows.RefreshAsync(target, "bench", "web", answer.GetProperty("refresh_token").GetString()!);
                var (refreshWork, refreshCompiling) = Proc.CpuNanosecondsSplit(mark, Proc.ThreadCpuNanoseconds(target.Pid));
                refreshCpu += refreshWork;
                refreshJit += refreshCompiling;
                refreshWall += clock.Elapsed;
            }

            string Ms(long nanoseconds) => $"{nanoseconds / 1e6 / stepRuns,8:F2}";
            Console.WriteLine($"  {target.Name}: server CPU per step, mean of {stepRuns} sequential sign-ins (background JIT apart)");
            foreach (var (name, nanoseconds) in charged)
            {
                Console.WriteLine($"    {name,-45} {Ms(nanoseconds)} ms CPU {elapsed[name].TotalMilliseconds / stepRuns,8:F2} ms wall {Ms(jit[name])} ms JIT");
            }

            Console.WriteLine($"    {"total",-45} {Ms(charged.Values.Sum())} ms CPU {"",17} {Ms(jit.Values.Sum())} ms JIT");
            Console.WriteLine($"    {"then a refresh_token grant (not in the total)",-45} {Ms(refreshCpu)} ms CPU {refreshWall.TotalMilliseconds / stepRuns,8:F2} ms wall {Ms(refreshJit)} ms JIT");
        }
    }
}
