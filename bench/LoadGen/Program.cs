using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LoadGen;

// bench/LoadGen: driven by bench/run.sh. Seeds the service, then runs every scenario against the
// service, the peer (oidc-provider) and the floor, and writes results.json and results.md.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i + 1 < args.Length; i += 2)
{
    options[args[i].TrimStart('-')] = args[i + 1];
}

string Opt(string key, string fallback) => options.TryGetValue(key, out var v) ? v : fallback;
int IntOpt(string key, int fallback) => int.Parse(Opt(key, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

Proc.ClockTicks = IntOpt("clk-tck", 100);
Proc.DatabaseProcess = Opt("database-process", "") is { Length: > 0 } databaseProcess ? databaseProcess : null;
Proc.PeerDatabasePid = IntOpt("peer-database-pid", 0);
var peerStore = Opt("peer-store", "memory");
var duration = TimeSpan.FromSeconds(double.Parse(Opt("duration", "10"), CultureInfo.InvariantCulture));
var warmup = TimeSpan.FromSeconds(double.Parse(Opt("warmup", "2"), CultureInfo.InvariantCulture));
var workers = IntOpt("workers", 16);
var signInWorkers = IntOpt("signin-workers", 4);
var tenantCount = IntOpt("tenants", 10_000);
var outDir = Opt("out", "bench/results");
var label = Opt("label", "sqlite");
Directory.CreateDirectory(outDir);

var ours = new Target("ours", Opt("ours", "http://127.0.0.1:5080"), IntOpt("ours-pid", 0), isOurs: true, forwardedProto: Opt("ours-forwarded-proto", ""));
var peer = options.ContainsKey("peer") ? new Target("peer", Opt("peer", ""), IntOpt("peer-pid", 0), isOurs: false) : null;
var floor = options.ContainsKey("floor") ? new Target("floor", Opt("floor", ""), IntOpt("floor-pid", 0), isOurs: false) : null;
var results = new List<Result>();
var extra = new Dictionary<string, object?>();

Console.WriteLine($"== seeding {ours.Http.BaseAddress}");
var seed = new Seed(ours, Opt("admin-id", "admin"), Opt("admin-secret", ""));
await seed.LoginAsync();
var users = Math.Max(workers, signInWorkers);
await seed.TenantAsync("bench", "ES256", users);
await seed.TenantAsync("bench-rs", "RS256", 0);

// --only 2,4 runs just those scenarios (for profiling one path); the default runs all.
var only = Opt("only", "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
bool Wanted(string scenario) => only.Length == 0 || only.Any(n => scenario.StartsWith(n + " ", StringComparison.Ordinal));

Task<Result> Run(string scenario, Target target, string unit, int count, Func<int, long, Task<int>> op) =>
    Runner.RunAsync(scenario, target.Name, unit, target.Pid, count, warmup, duration, op);

async Task Each(string scenario, string unit, int count, Func<Target, Func<int, long, Task<int>>?> build, bool withFloor = false)
{
    if (!Wanted(scenario))
    {
        return;
    }

    foreach (var target in new[] { ours, peer, withFloor ? floor : null })
    {
        if (target is null || build(target) is not { } op)
        {
            continue;
        }

        results.Add(await Run(scenario, target, unit, count, op));
    }
}

// Warm every target's code paths (JIT tiering, connection pools, first keys) before anything is measured: a
// mixed load of every scenario for a fixed time (.NET's tiered compilation keeps recompiling hot methods for
// tens of seconds after start; V8 does the same), then each scenario still has its own warm-up.
var prewarmFor = TimeSpan.FromSeconds(IntOpt("prewarm-seconds", 30));
Console.WriteLine($"== warming up ({prewarmFor.TotalSeconds} s of every scenario)");
var prewarmEnds = Stopwatch.StartNew();
await Parallel.ForEachAsync(Enumerable.Range(0, workers), new ParallelOptions { MaxDegreeOfParallelism = workers }, async (worker, _) =>
{
    for (var i = 0; prewarmEnds.Elapsed < prewarmFor; i++)
    {
        foreach (var target in new[] { ours, peer })
        {
            if (target is null)
            {
                continue;
            }

            if (worker < 4)
            {
                // A quarter of the workers sign in and refresh; the others drive the cheap scenarios. Each sign-in is
                // followed by many refreshes: with two workers and ten refreshes each, the refresh path had too few
                // calls in the warm-up for .NET's tiered compilation to finish with it, and the first refresh run read
                // a fifth below the same service a minute later (a service under refreshes alone, 10 s windows from
                // its start: 451, 876, 1099, 1146, 1154, 1215, 1208, 1217 refreshes per CPU-s; flat at 820-850 from
                // the first window with tiered compilation off).
                var answer = await Flows.SignInAsync(target, "bench", "web", $"user{worker}@bench.test");
                var refresh = answer.GetProperty("refresh_token").GetString()!;
                for (var r = 0; r < 50; r++)
                {
                    refresh = (await Flows.RefreshAsync(target, "bench", "web", refresh)).GetProperty("refresh_token").GetString()!;
                }

                continue;
            }

            var (tenant, client) = i % 2 == 0 ? ("bench", "cc") : ("bench-rs", target == ours ? "cc" : "cc-rs");
            await Flows.ClientCredentialsAsync(target, tenant, client);
            await Flows.GetOkAsync(target.Http, target.DiscoveryPath("bench"));
            await Flows.GetOkAsync(target.Http, target.JwksPath("bench"));
        }

        if (floor is not null && worker >= 2)
        {
            await Flows.PostFormAsync(floor.Http, i % 2 == 0 ? "/es256/token" : "/rs256/token",
                [new("grant_type", "client_credentials"), new("client_id", "cc"), new("client_secret", Flows.ClientSecret)]);
        }
    }
});

// --steps N: after the warm-up, N sign-ins one at a time on each target, with the server's CPU charged to each
// of the sign-in's requests (to see where a sign-in's CPU goes beside the hash); then nothing else runs.
if (IntOpt("steps", 0) is var stepRuns and > 0)
{
    await StepsMode.RunAsync([ours, peer], stepRuns, users);
    return;
}

Console.WriteLine($"== scenarios ({label}; {workers} workers, sign-ins {signInWorkers}; warm-up {warmup.TotalSeconds} s, measured {duration.TotalSeconds} s each)");
foreach (var (alg, tenant, peerClient, floorPath) in new[] { ("ES256", "bench", "cc", "/es256/token"), ("RS256", "bench-rs", "cc-rs", "/rs256/token") })
{
    await Each($"1 client_credentials {alg}", "req", workers, target => target == floor
        ? async (_, _) => { await Flows.PostFormAsync(target.Http, floorPath, [new("grant_type", "client_credentials"), new("client_id", "cc"), new("client_secret", Flows.ClientSecret)]); return 1; }
        : async (_, _) => { await Flows.ClientCredentialsAsync(target, tenant, target == ours ? "cc" : peerClient); return 1; }, withFloor: true);
}

// 2: refresh_token grants, then the same ratio in alternating slices (RefreshScenario).
if (Wanted("2 refresh_token"))
{
    await RefreshScenario.RunAsync(ours, peer, workers, warmup, duration, results, extra);
}

// The hash rate the sign-ins are held against is taken just before and just after them, so that a change in the
// machine's speed during the run (seen here: the same hash at 45 ms and at 79 ms of thread CPU in the same hour)
// moves both sides of the ratio; the figure measured alone at the start stays in the report.
// It is taken twice: with one hashing thread, and with one per core, as the sign-ins load the machine.
async Task<double?> HashRateNowAsync(int threads)
{
    if (Opt("hasher-dll", "") is not { Length: > 0 } dll)
    {
        return null;
    }

    var file = Path.Combine(outDir, "hasher-now.json");
    using var process = Process.Start(new ProcessStartInfo("dotnet", [dll, "--cpu-only", "--threads", threads.ToString(CultureInfo.InvariantCulture), file]) { RedirectStandardOutput = true })!;
    await process.StandardOutput.ReadToEndAsync();
    await process.WaitForExitAsync();
    return process.ExitCode == 0
        ? JsonDocument.Parse(File.ReadAllText(file)).RootElement.GetProperty("verificationsPerCpuSecond").GetDouble()
        : null;
}

if (Wanted("3 sign-in"))
{
    var cores = Environment.ProcessorCount;
    var before = await HashRateNowAsync(1);
    var beforeAll = await HashRateNowAsync(cores);
    // One complete sign-in per op (six requests), each worker as its own user.
    Func<int, long, Task<int>> SignIn(Target target) => async (worker, _) =>
    {
        await Flows.SignInAsync(target, "bench", "web", $"user{worker}@bench.test");
        return 6;
    };

    await Each("3 sign-in (6 requests each)", "sign-in", signInWorkers, SignIn);
    if (before is { } b && await HashRateNowAsync(1) is { } a)
    {
        extra["hashRateAroundSignIns"] = new { before = Math.Round(b, 2), after = Math.Round(a, 2), mean = Math.Round((a + b) / 2, 2) };
        Console.WriteLine($"  hash rate around the sign-ins, one thread: {b:F1} before, {a:F1} after (verifications per CPU-s)");
    }

    if (beforeAll is { } ba && await HashRateNowAsync(cores) is { } aa)
    {
        extra["hashRateAroundSignInsAllCores"] = new { threads = cores, before = Math.Round(ba, 2), after = Math.Round(aa, 2), mean = Math.Round((aa + ba) / 2, 2) };
        Console.WriteLine($"  hash rate around the sign-ins, {cores} threads: {ba:F1} before, {aa:F1} after (verifications per CPU-s)");
    }

    // The same ratio in alternating slices: the hash with one thread per core for 3 s, then our sign-ins for 8 s,
    // three times, and the median of the three ratios. Each ratio takes both of its figures within about 12 s; the
    // before and after figures above are half a minute apart, with the peer's sign-ins between them, and this
    // machine's hash rate was seen to fall from 10.4 to 6.4 across one such stretch (that run's ratio read 1.05).
    var slices = new List<object>();
    var sliceRatios = new List<double>();
    for (var k = 1; k <= 3 && await HashRateNowAsync(cores) is { } hash; k++)
    {
        var slice = await Runner.RunAsync($"3 sign-in, slice {k}", ours.Name, "sign-in", ours.Pid, signInWorkers, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8), SignIn(ours));
        var ratio = slice.OpsPerCpuSecond / hash;
        sliceRatios.Add(ratio);
        slices.Add(new { hashRate = Math.Round(hash, 2), signInsPerCpuSecond = Math.Round(slice.OpsPerCpuSecond, 2), ratio = Math.Round(ratio, 3) });
        Console.WriteLine($"  slice {k}: hash {hash:F2} per CPU-s ({cores} threads), then ours {slice.OpsPerCpuSecond:F2} sign-ins per CPU-s: {ratio:F3}");
    }

    if (sliceRatios.Count == 3)
    {
        sliceRatios.Sort();
        extra["signInSlices"] = new { threads = cores, slices, median = Math.Round(sliceRatios[1], 3) };
    }
}

await Each("4 discovery + JWKS", "req", workers, target => async (_, i) =>
{
    await Flows.GetOkAsync(target.Http, i % 2 == 0 ? target.DiscoveryPath("bench") : target.JwksPath("bench"));
    return 1;
});

// 5: many tenants. Created through the API in parallel (the service makes a tenant's keys and OpenIddict state as it
// creates it, and holds them); then each touched once (cold: in a run that reuses its database, --data, its keys are
// read and its OpenIddict options built; its client's secret verified) and again (warm); memory read along the way.
// The measured runs compare tenants in use (each used again just before) with one tenant.
if (!Wanted("5 tenants"))
{
    Report.Write(outDir, label, results, extra, Opt("hasher", ""), tenantCount, peerStore, new
    {
        workers, signInWorkers, warmupSeconds = warmup.TotalSeconds, durationSeconds = duration.TotalSeconds, cores = Environment.ProcessorCount, peerStore,
    });
    return;
}

Console.WriteLine($"== {tenantCount} tenants");
var ids = Enumerable.Range(0, tenantCount).Select(i => $"t{i:D5}").ToArray();
var created = Stopwatch.StartNew();
var cpuBefore = Proc.CpuSeconds(ours.Pid);
await seed.LoginAsync();
await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (id, _) => await seed.TenantAsync(id, "ES256", 0));
var creation = new { tenants = tenantCount, seconds = Math.Round(created.Elapsed.TotalSeconds, 1), serverCpuSeconds = Math.Round(Proc.CpuSeconds(ours.Pid) - cpuBefore, 1) };
Console.WriteLine($"  created {tenantCount} tenants with a client each in {creation.seconds} s ({creation.serverCpuSeconds} server CPU-s)");

var memory = new List<object>();
void Checkpoint(int touched)
{
    var heap = Proc.ManagedHeapMiB(ours.Pid);
    var rss = Proc.StatusMiB(ours.Pid, "VmRSS");
    memory.Add(new { tenantsTouched = touched, rssMiB = Math.Round(rss, 1), managedHeapMiB = heap is null ? (double?)null : Math.Round(heap.Value, 1) });
    Console.WriteLine($"  after touching {touched,6} tenants: RSS {rss:F1} MiB, managed heap {(heap is null ? "n/a" : heap.Value.ToString("F1", CultureInfo.InvariantCulture))} MiB");
}

Checkpoint(0);
var sample = Math.Min(tenantCount, 100);
var cold = new List<double>();
var warm = new List<double>();
var cpuCold = Proc.CpuSeconds(ours.Pid);
for (var i = 0; i < sample; i++)
{
    var clock = Stopwatch.StartNew();
    await Flows.GetOkAsync(ours.Http, ours.DiscoveryPath(ids[i]));
    cold.Add(clock.Elapsed.TotalMilliseconds);
    await Flows.GetOkAsync(ours.Http, ours.JwksPath(ids[i]));
    clock.Restart();
    await Flows.GetOkAsync(ours.Http, ours.DiscoveryPath(ids[i]));
    warm.Add(clock.Elapsed.TotalMilliseconds);
}

var coldCpuMs = (Proc.CpuSeconds(ours.Pid) - cpuCold) * 1000 / sample;

// A client's first token request: its secret verified with the slow hash (PBKDF2), then remembered.
var coldToken = new List<double>();
var cpuToken = Proc.CpuSeconds(ours.Pid);
for (var i = 0; i < sample; i++)
{
    var clock = Stopwatch.StartNew();
    await Flows.ClientCredentialsAsync(ours, ids[i], "cc");
    coldToken.Add(clock.Elapsed.TotalMilliseconds);
}

var coldTokenCpuMs = (Proc.CpuSeconds(ours.Pid) - cpuToken) * 1000 / sample;
coldToken.Sort();
cold.Sort();
warm.Sort();
var coldStart = new
{
    sampledTenants = sample,
    coldP50Ms = Math.Round(Runner.Percentile([.. cold], 0.5), 2),
    coldP99Ms = Math.Round(Runner.Percentile([.. cold], 0.99), 2),
    warmP50Ms = Math.Round(Runner.Percentile([.. warm], 0.5), 2),
    warmP99Ms = Math.Round(Runner.Percentile([.. warm], 0.99), 2),
    serverCpuMsPerNewTenant = Math.Round(coldCpuMs, 1),
    firstTokenP50Ms = Math.Round(Runner.Percentile([.. coldToken], 0.5), 2),
    firstTokenP99Ms = Math.Round(Runner.Percentile([.. coldToken], 0.99), 2),
    serverCpuMsPerFirstToken = Math.Round(coldTokenCpuMs, 1),
};
Console.WriteLine($"  cold first request (discovery, sequential, {sample} tenants): p50 {coldStart.coldP50Ms} ms, p99 {coldStart.coldP99Ms} ms; warm p50 {coldStart.warmP50Ms} ms; server CPU {coldStart.serverCpuMsPerNewTenant} ms per new tenant (3 GETs)");
Console.WriteLine($"  a client's first token request (sequential, {sample} tenants): p50 {coldStart.firstTokenP50Ms} ms, p99 {coldStart.firstTokenP99Ms} ms; server CPU {coldStart.serverCpuMsPerFirstToken} ms each");

// A tenant's discovery document and JWKS, fetched once each.
async Task DocumentsOf(string id)
{
    await Flows.GetOkAsync(ours.Http, ours.DiscoveryPath(id));
    await Flows.GetOkAsync(ours.Http, ours.JwksPath(id));
}

var touched = sample;
foreach (var checkpoint in new[] { 1_000, tenantCount }.Where(c => c > sample && c <= tenantCount).Distinct())
{
    await Parallel.ForEachAsync(ids[touched..checkpoint], new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (id, _) =>
    {
        await DocumentsOf(id);
        await Flows.ClientCredentialsAsync(ours, id, "cc");
    });
    touched = checkpoint;
    Checkpoint(touched);
}

if (touched == sample)
{
    Checkpoint(touched);
}

// Before each many-tenant window, every tenant once: the tenants sat idle while the one-tenant windows ran (half a
// minute and more, past the service's 30-second cache of tenants and clients), and each window measures tenants in
// use, as the one-tenant window does its tenant. What coming back after such an idle costs is this pass, recorded.
var idleReturn = new Dictionary<string, object>();
async Task ReturnAfterIdle(string what, Func<string, Task> op)
{
    var cpu = Proc.CpuSeconds(ours.Pid);
    var clock = Stopwatch.StartNew();
    await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = workers }, async (id, _) => await op(id));
    idleReturn[what] = new
    {
        tenants = ids.Length,
        seconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
        serverCpuMsPerTenant = Math.Round((Proc.CpuSeconds(ours.Pid) - cpu) * 1000 / ids.Length, 3),
    };
}

// Each many-tenant run comes right after the same load on one tenant ("bench"), in the same process: the 10k
// against 1 ratios compare figures taken a minute apart, not with scenarios 1 and 4, which ran before the tenants
// were created (a quarter of an hour earlier on a slow machine, where the machine's drift alone moved p99 by half).
var random = new ThreadLocal<Random>(() => new Random());
results.Add(await Run("5 discovery + JWKS, 1 tenant", ours, "req", workers, async (_, i) =>
{
    await Flows.GetOkAsync(ours.Http, i % 2 == 0 ? ours.DiscoveryPath("bench") : ours.JwksPath("bench"));
    return 1;
}));
await ReturnAfterIdle("discoveryAndJwks", DocumentsOf);
results.Add(await Run($"5 discovery + JWKS, {tenantCount} tenants", ours, "req", workers, async (_, i) =>
{
    var id = ids[random.Value!.Next(ids.Length)];
    await Flows.GetOkAsync(ours.Http, i % 2 == 0 ? ours.DiscoveryPath(id) : ours.JwksPath(id));
    return 1;
}));
results.Add(await Run("5 client_credentials ES256, 1 tenant", ours, "req", workers, async (_, _) =>
{
    await Flows.ClientCredentialsAsync(ours, "bench", "cc");
    return 1;
}));
await ReturnAfterIdle("clientCredentials", id => Flows.ClientCredentialsAsync(ours, id, "cc"));
results.Add(await Run($"5 client_credentials ES256, {tenantCount} tenants", ours, "req", workers, async (_, _) =>
{
    await Flows.ClientCredentialsAsync(ours, ids[random.Value!.Next(ids.Length)], "cc");
    return 1;
}));

extra["tenants"] = new { creation, coldStart, memory, idleReturn };
Report.Write(outDir, label, results, extra, Opt("hasher", ""), tenantCount, peerStore, new
{
    workers, signInWorkers, warmupSeconds = warmup.TotalSeconds, durationSeconds = duration.TotalSeconds, cores = Environment.ProcessorCount, peerStore,
});
