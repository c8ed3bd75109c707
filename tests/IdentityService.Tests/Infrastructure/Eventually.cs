namespace IdentityService.Tests.Infrastructure;

/// <summary>Waits for work the service does in the background (a cache read again off the request) to show.</summary>
public static class Eventually
{
    public static Task TrueAsync(Func<bool> condition, string? because = null) => TrueAsync(() => Task.FromResult(condition()), because);

    public static async Task TrueAsync(Func<Task<bool>> condition, string? because = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, because ?? "The condition did not hold within 10 s.");
            await Task.Delay(20);
        }
    }
}
