using IdentityService.Diagnostics;

namespace IdentityService.Tests.Diagnostics;

/// <summary>The C library's heap is limited to a few arenas at start, unless the operator chose a number.</summary>
public sealed class NativeHeapTests
{
    [Fact]
    public void OnLinuxWithGlibc_TheArenaLimitIsAccepted()
    {
        Assert.True(OperatingSystem.IsLinux(), "The service and its CI run on Linux.");

        // glibc's mallopt answers 1 when it takes the setting: the call reaches the right library and entry point.
        Assert.True(NativeHeap.LimitArenas(operatorSetting: null));
    }

    [Fact]
    public void AnOperatorsMallocArenaMax_IsLeftAlone()
    {
        Assert.False(NativeHeap.LimitArenas(operatorSetting: "8"));
    }
}
