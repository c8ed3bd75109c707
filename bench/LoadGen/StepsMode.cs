using System.Diagnostics;

namespace LoadGen;

/// <summary>
/// <c>--steps N</c>: N sign-ins one at a time on each target, with the server's CPU (summed per thread) charged to each
/// of the sign-in's requests, and then one refresh of its token charged apart: where a sign-in's CPU goes beside the hash.
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
            var elapsed = new SortedDictionary<string, TimeSpan>(StringComparer.Ordinal);
            long refreshCpu = 0;
            var refreshWall = TimeSpan.Zero;
            for (var i = 0; i < stepRuns; i++)
            {
                var mark = Proc.ThreadCpuNanoseconds(target.Pid);
                var clock = Stopwatch.StartNew();
                var answer = await Flows.SignInAsync(target, "bench", "web", $"user{i % users}@bench.test", name =>
                {
                    var now = Proc.ThreadCpuNanoseconds(target.Pid);
                    charged[name] = charged.GetValueOrDefault(name) + Proc.CpuNanosecondsBetween(mark, now);
                    elapsed[name] = elapsed.GetValueOrDefault(name) + clock.Elapsed;
                    clock.Restart();
                    mark = Proc.ThreadCpuNanoseconds(target.Pid);
                });

                // Then one refresh of the sign-in's refresh token, charged apart (it is not part of a sign-in).
                mark = Proc.ThreadCpuNanoseconds(target.Pid);
                clock.Restart();
                await Flows.RefreshAsync(target, "bench", "web", answer.GetProperty("refresh_token").GetString()!);
                refreshCpu += Proc.CpuNanosecondsBetween(mark, Proc.ThreadCpuNanoseconds(target.Pid));
                refreshWall += clock.Elapsed;
            }

            Console.WriteLine($"  {target.Name}: server CPU per step, mean of {stepRuns} sequential sign-ins");
            foreach (var (name, nanoseconds) in charged)
            {
                Console.WriteLine($"    {name,-45} {nanoseconds / 1e6 / stepRuns,8:F2} ms CPU {elapsed[name].TotalMilliseconds / stepRuns,8:F2} ms wall");
            }

            Console.WriteLine($"    {"total",-45} {charged.Values.Sum() / 1e6 / stepRuns,8:F2} ms");
            Console.WriteLine($"    {"then a refresh_token grant (not in the total)",-45} {refreshCpu / 1e6 / stepRuns,8:F2} ms CPU {refreshWall.TotalMilliseconds / stepRuns,8:F2} ms wall");
        }
    }
}
