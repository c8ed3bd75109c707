using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LoadGen;

/// <summary>results.json and results.md: every run, the ratios ours/peer per CPU-second, the issue's targets.</summary>
internal static class Report
{
    public static void Write(string dir, string label, List<Result> results, Dictionary<string, object?> extra, string hasherPath, int tenants, string peerStore, object settings)
    {
        double? hasherRate = null;
        JsonElement? hasher = null;
        if (hasherPath.Length > 0 && File.Exists(hasherPath))
        {
            hasher = JsonDocument.Parse(File.ReadAllText(hasherPath)).RootElement.Clone();
            hasherRate = hasher.Value.GetProperty("verificationsPerCpuSecond").GetDouble();
        }

        // A number inside one of the extra figures LoadGen recorded (anonymous objects), if that figure was taken.
        double? Extra(string key, string property) => extra.TryGetValue(key, out var figure) && figure is not null
            ? JsonSerializer.SerializeToElement(figure).GetProperty(property).GetDouble()
            : null;

        // Taken around the sign-ins when they ran: the sign-in ratio uses it, the figure measured alone is reported.
        var hashAround = Extra("hashRateAroundSignIns", "mean");
        var signInHashRate = hashAround ?? hasherRate;
        var aroundAll = Extra("hashRateAroundSignInsAllCores", "mean");

        Result? Find(string prefix, string target) => results.FirstOrDefault(r => r.Scenario.StartsWith(prefix, StringComparison.Ordinal) && r.Target == target);
        double? PerCpu(string prefix, string a, string b) =>
            Find(prefix, a) is { } x && Find(prefix, b) is { } y && y.OpsPerCpuSecond > 0 ? x.OpsPerCpuSecond / y.OpsPerCpuSecond : null;

        var checks = new List<(string Target, string Measure, double? Value, string Goal, bool? Met)>();
        void Check(string name, string measure, double? value, string goal, Func<double, bool> ok) =>
            checks.Add((name, measure, value is null ? null : Math.Round(value.Value, 2), goal, value is null ? null : ok(value.Value)));

        Check("client_credentials ES256 >= 1x peer (goal 2x)", "ours/peer req per CPU-s", PerCpu("1 client_credentials ES256", "ours", "peer"), ">= 1 (2)", v => v >= 1);
        Check("client_credentials ES256 >= half the floor", "ours/floor req per CPU-s", PerCpu("1 client_credentials ES256", "ours", "floor"), ">= 0.5", v => v >= 0.5);
        Check("client_credentials RS256 vs peer (same alg)", "ours/peer req per CPU-s", PerCpu("1 client_credentials RS256", "ours", "peer"), ">= 1", v => v >= 1);
        Check("client_credentials RS256 vs floor", "ours/floor req per CPU-s", PerCpu("1 client_credentials RS256", "ours", "floor"), ">= 0.5", v => v >= 0.5);
        Check("refresh_token >= 1x peer", "ours/peer req per CPU-s", PerCpu("2 refresh_token", "ours", "peer"), ">= 1", v => v >= 1);
        Check("refresh_token >= 1x peer, alternating slices", "median of 3: ours/peer refreshes per CPU-s (6 s each, one after the other)",
            Extra("refreshSlices", "median"), ">= 1", v => v >= 1);
        Check("discovery and JWKS >= 1x peer", "ours/peer req per CPU-s", PerCpu("4 discovery", "ours", "peer"), ">= 1", v => v >= 1);
        Check("sign-ins vs peer (information)", "ours/peer sign-ins per CPU-s", PerCpu("3 sign-in", "ours", "peer"), "-", _ => true);
        Check("sign-ins >= 80% of the raw hash rate", hashAround is null
                ? "ours sign-ins per CPU-s / hash verifications per CPU-s"
                : "ours sign-ins per CPU-s / hash verifications per CPU-s (hash taken around the sign-ins)",
            Find("3 sign-in", "ours") is { } s && signInHashRate is { } h ? s.OpsPerCpuSecond / h : null, ">= 0.8", v => v >= 0.8);
        Check("sign-ins >= 80% of the raw hash rate, every core hashing", "ours sign-ins per CPU-s / hash verifications per CPU-s (one hashing thread per core, taken around the sign-ins)",
            Find("3 sign-in", "ours") is { } s2 && aroundAll is { } h2 ? s2.OpsPerCpuSecond / h2 : null, ">= 0.8", v => v >= 0.8);
        // Against the one-tenant run measured just before in scenario 5 (older results: against scenarios 4 and 1).
        Result? ManyTenants(string prefix) => results.FirstOrDefault(r => r.Scenario.StartsWith(prefix, StringComparison.Ordinal) && r.Target == "ours" && !r.Scenario.EndsWith(", 1 tenant", StringComparison.Ordinal));
        Result? OneTenant(string prefix, string fallback) => Find(prefix + ", 1 tenant", "ours") ?? Find(fallback, "ours");
        Check("sign-ins >= 80% of the raw hash rate, alternating slices", "median of 3: ours sign-ins per CPU-s (8 s) / hash verifications per CPU-s (one thread per core, the 3 s just before)",
            Extra("signInSlices", "median"), ">= 0.8", v => v >= 0.8);
        Check($"{tenants} tenants vs 1: discovery+JWKS p99 within 1.5x", "p99 ratio",
            ManyTenants("5 discovery") is { } d5 && OneTenant("5 discovery + JWKS", "4 discovery") is { } d1 ? d5.P99Ms / d1.P99Ms : null, "<= 1.5", v => v <= 1.5);
        Check($"{tenants} tenants vs 1: client_credentials p99 within 1.5x", "p99 ratio",
            ManyTenants("5 client_credentials") is { } c5 && OneTenant("5 client_credentials ES256", "1 client_credentials ES256") is { } c1 ? c5.P99Ms / c1.P99Ms : null, "<= 1.5", v => v <= 1.5);
        // Where a side's storage runs in processes of its own (PostgreSQL for ours; Redis for a peer run with
        // --peer-store redis), the same ratios with that CPU added to the side's own. Ours on SQLite and the peer in
        // memory keep their storage inside their process, where it is counted already.
        double WithStorage(Result r) => r.OpsPerCpuSecondWithDatabase ?? r.OpsPerCpuSecond;
        double? BothWithStorage(string prefix) =>
            Find(prefix, "ours") is { } x && Find(prefix, "peer") is { } y && WithStorage(y) > 0 ? WithStorage(x) / WithStorage(y) : null;
        if (results.Any(r => r.DatabaseCpuSeconds is not null))
        {
            var oursStored = results.Any(r => r.Target == "ours" && r.DatabaseCpuSeconds is not null);
            var peerStored = results.Any(r => r.Target == "peer" && r.DatabaseCpuSeconds is not null);
            var sides = (oursStored, peerStored) switch
            {
                (true, true) => "ours + its database, peer + its Redis",
                (true, false) => "ours + database CPU",
                _ => "peer + its Redis",
            };
            Check($"client_credentials ES256, {sides} (information)", "ours/peer req per CPU-s", BothWithStorage("1 client_credentials ES256"), "-", _ => true);
            Check($"refresh_token, {sides} (information)", "ours/peer req per CPU-s", BothWithStorage("2 refresh_token"), "-", _ => true);
            Check($"sign-ins, {sides} (information)", "ours/peer sign-ins per CPU-s", BothWithStorage("3 sign-in"), "-", _ => true);
            if (oursStored)
            {
                Check("sign-ins, ours + database CPU, vs the raw hash rate (information)", "sign-ins per CPU-s / hash verifications per CPU-s",
                    Find("3 sign-in", "ours") is { OpsPerCpuSecondWithDatabase: { } sd } && signInHashRate is { } hr ? sd / hr : null, "-", _ => true);
            }
        }

        // Not applicable (rather than NaN, read as not met) when only scenario 5 ran.
        double? peak = results.Where(r => r.Target == "ours" && !r.Scenario.StartsWith('5')).Select(r => (double?)r.PeakRssMiB).Max() * 1.048576;
        Check("memory under load <= 300 MB RSS (scenarios 1-4)", "ours' highest peak RSS, MB (10^6 bytes)", peak, "<= 300", v => v <= 300);
        // Only when the many-tenant scenario ran: otherwise this row would repeat the one above under another name.
        double? peakMany = results.Any(r => r.Target == "ours" && r.Scenario.StartsWith('5'))
            ? results.Where(r => r.Target == "ours").Max(r => r.PeakRssMiB) * 1.048576
            : null;
        Check($"memory under load <= 300 MB RSS (with {tenants} tenants)", "ours' highest peak RSS, MB (10^6 bytes)", peakMany, "<= 300", v => v <= 300);

        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"## Benchmark ({label}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores)");
        md.AppendLine();
        md.AppendLine("| Scenario | Target | Workers | Throughput /s | p50 ms | p99 ms | Server CPU s | per CPU-s | Database CPU s | per CPU-s with database | Peak RSS MiB | Errors |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {r.Scenario} | {r.Target} | {r.Workers} | {r.OpsPerSecond:F1} {r.Unit} | {r.P50Ms:F2} | {r.P99Ms:F2} | {r.CpuSeconds:F2} | {r.OpsPerCpuSecond:F1} | " +
                $"{(r.DatabaseCpuSeconds is { } d ? d.ToString("F2", CultureInfo.InvariantCulture) : "-")} | {(r.OpsPerCpuSecondWithDatabase is { } w ? w.ToString("F1", CultureInfo.InvariantCulture) : "-")} | {r.PeakRssMiB:F1} | {r.Errors} |");
        }

        md.AppendLine();
        if (hasher is { } hj)
        {
            var cpuText = hj.TryGetProperty("cpuMicroseconds", out var cpuUs) ? (cpuUs.GetDouble() / 1000).ToString("F2", CultureInfo.InvariantCulture) + " ms of CPU = " : "";
            md.AppendLine(CultureInfo.InvariantCulture, $"Password hasher alone ({hj.GetProperty("algorithm").GetString()}; {hj.GetProperty("method").GetString()}): " +
                $"{hj.GetProperty("meanMicroseconds").GetDouble() / 1000:F2} ms per verification (wall clock); {cpuText}{hasherRate:F1} per CPU-second.");
            md.AppendLine();
        }

        if (extra.GetValueOrDefault("hashRateAroundSignIns") is { } around)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"Hash rate taken just before and after the sign-ins (verifications per CPU-s; the sign-in ratio uses their mean): {JsonSerializer.Serialize(around)}");
            md.AppendLine();
        }

        if (extra.GetValueOrDefault("hashRateAroundSignInsAllCores") is { } all)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"The same with one hashing thread per core, as the sign-ins load the machine: {JsonSerializer.Serialize(all)}");
            md.AppendLine();
        }

        if (extra.TryGetValue("tenants", out var t) && t is not null)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"Tenants: {JsonSerializer.Serialize(t)}");
            md.AppendLine();
        }

        if (peerStore != "memory")
        {
            // The issue's bars are read against the default peer, which keeps its grants in memory: a run against
            // a peer on Redis is information, and says so on every row that compares with it.
            md.AppendLine(CultureInfo.InvariantCulture, $"The peer keeps its grants in {peerStore} in this run (`--peer-store {peerStore}`): every ratio against the peer below is against that peer, information beside the default run's (the peer in memory), by which the issue's bars are read.");
            md.AppendLine();
            checks = [.. checks.Select(c => c.Target.Contains("peer", StringComparison.Ordinal) ? c with { Target = $"{c.Target} [peer on {peerStore}]" } : c)];
        }

        md.AppendLine("| Issue 5 target | Measure | Value | Goal | Met |");
        md.AppendLine("|---|---|---:|---|---|");
        foreach (var c in checks)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {c.Target} | {c.Measure} | {(c.Value is null ? "n/a" : c.Value.Value.ToString("F2", CultureInfo.InvariantCulture))} | {c.Goal} | {(c.Met is null ? "n/a" : c.Met.Value ? "yes" : "**no**")} |");
        }

        var json = new
        {
            label,
            utc = DateTime.UtcNow,
            settings,
            results,
            hasher,
            tenants = extra.GetValueOrDefault("tenants"),
            targets = checks.Select(c => new { target = c.Target, measure = c.Measure, value = c.Value, goal = c.Goal, met = c.Met }),
        };
        var stem = Path.Combine(dir, $"results-{label}");
        File.WriteAllText(stem + ".json", JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
        File.WriteAllText(stem + ".md", md.ToString());
        Console.WriteLine();
        Console.WriteLine(md.ToString());
        Console.WriteLine($"written: {stem}.json, {stem}.md");
    }
}
