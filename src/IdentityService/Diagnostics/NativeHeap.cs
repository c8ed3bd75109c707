using System.Runtime.InteropServices;

namespace IdentityService.Diagnostics;

/// <summary>
/// The C library's heap (glibc's malloc, used by OpenSSL and SQLite under the service) gets at most
/// <see cref="Arenas"/> arenas instead of its default of eight per core. Each thread that allocates takes an arena of
/// its own while there are fewer than the maximum, and each arena keeps freed memory for itself: with the thread
/// pool's threads each signing and querying, that is resident memory held for no gain. Measured (README, "Performance"):
/// peak resident memory under scenarios 1-4 of the benchmark 243 MiB to 222-229, and about 18 MB less with 10,000
/// tenants; CPU per request moved no more than this machine's noise.
/// An operator's <c>MALLOC_ARENA_MAX</c> wins (glibc reads it before the service starts), and a C library other than
/// glibc (Alpine's musl) is left as it is.
/// </summary>
internal static class NativeHeap
{
    internal const int Arenas = 2;

    // glibc's malloc.h.
    private const int M_ARENA_MAX = -8;

    /// <summary>Called first thing at start, before the thread pool has threads that allocate. Returns whether the limit was set.</summary>
    public static bool LimitArenas() => LimitArenas(Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX"));

    internal static bool LimitArenas(string? operatorSetting)
    {
        if (!OperatingSystem.IsLinux() || !string.IsNullOrEmpty(operatorSetting))
        {
            return false;
        }

        try
        {
            return mallopt(M_ARENA_MAX, Arenas) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    // glibc's soname: musl has no libc.so.6, so the call is never made there.
    [DllImport("libc.so.6")]
    private static extern int mallopt(int parameter, int value);
}
