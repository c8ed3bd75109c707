using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// bench/AllocProfile: what a loaded service allocates, from an EventPipe trace of its GC allocation ticks
// (one per ~100 KB allocated, with the type and the stack):
//   dotnet-trace collect -p <service pid> --profile gc-verbose --duration 00:00:00:05 -o alloc.nettrace
//   dotnet run -c Release --project bench/AllocProfile -- alloc.nettrace
// Prints the share of the sampled bytes by type, and by the first frame outside the BCL with the type.
if (args.Length != 1 || !File.Exists(args[0]))
{
    Console.Error.WriteLine("usage: AllocProfile <trace.nettrace>");
    return 2;
}

using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var byType = new Dictionary<string, long>();
var byFrame = new Dictionary<string, long>();
long total = 0;
foreach (var traceEvent in log.Events)
{
    if (traceEvent is not GCAllocationTickTraceData tick)
    {
        continue;
    }

    var bytes = tick.AllocationAmount64;
    var type = tick.TypeName ?? "?";
    total += bytes;
    byType[type] = byType.GetValueOrDefault(type) + bytes;

    var frame = "?";
    for (var call = tick.CallStack(); call is not null; call = call.Caller)
    {
        var name = call.CodeAddress.FullMethodName;
        if (!string.IsNullOrEmpty(name) && !name.StartsWith("System.", StringComparison.Ordinal)
            && !name.StartsWith("Microsoft.Extensions.", StringComparison.Ordinal))
        {
            frame = name;
            break;
        }
    }

    var key = $"{frame}  <=  {type}";
    byFrame[key] = byFrame.GetValueOrDefault(key) + bytes;
}

if (total == 0)
{
    Console.Error.WriteLine("No allocation ticks in the trace (was it taken with --profile gc-verbose?).");
    return 1;
}

Console.WriteLine($"{total / 1e6:F1} MB sampled");
foreach (var (type, bytes) in byType.OrderByDescending(p => p.Value).Take(30))
{
    Console.WriteLine($"{bytes * 100.0 / total,6:F2}%  {type}");
}

Console.WriteLine("-- by the first frame outside the BCL");
foreach (var (key, bytes) in byFrame.OrderByDescending(p => p.Value).Take(40))
{
    Console.WriteLine($"{bytes * 100.0 / total,6:F2}%  {key}");
}

return 0;
