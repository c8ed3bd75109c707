using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Protection;

/// <summary>
/// Counting is atomic: wrong passwords sent all at once lock the account at exactly the threshold, and no
/// attempt past it reaches the password. On the database lockout store (SQLite, or PostgreSQL in the
/// PostgreSQL pass) and on the Redis one.
/// </summary>
public sealed class ParallelLockoutTests(ITestOutputHelper output)
{
    private const string Password = "correct horse battery staple";

    [Fact]
    public async Task FiftyWrongPasswordsInParallel_OnTheDatabase_LockAtExactlyTenAndCheckNoPasswordPastIt()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await FiftyInParallelLockAtTheThresholdAsync(factory);
    }

    [Fact]
    public async Task FiftyWrongPasswordsInParallel_OnRedis_LockAtExactlyTenAndCheckNoPasswordPastIt()
    {
        var prefix = TestRedis.NewPrefix();
        try
        {
            using var factory = new IdentityServiceFactory { Output = output }.WithRedis(prefix);
            await FiftyInParallelLockAtTheThresholdAsync(factory);
        }
        finally
        {
            await TestRedis.FlushAsync(prefix);
        }
    }

    private static async Task FiftyInParallelLockAtTheThresholdAsync(IdentityServiceFactory factory)
    {
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", Password);
        using var page = new ParallelSignInPage(factory, "acme", "198.51.100.20");

        var attempts = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => page.SignInAsync("ada@acme.test", $"wrong password {i}"))));
        Assert.All(attempts, signedIn => Assert.False(signedIn));

        // Exactly ten attempts had their password checked; the forty others were refused as locked, unchecked.
        var reasons = await ParallelSignInPage.LoggedReasonsAsync(factory, "acme");
        Assert.Equal(50, reasons.Count);
        Assert.Equal(10, reasons.Count(r => r == "invalid_credentials"));
        Assert.Equal(40, reasons.Count(r => r == "account_locked"));

        // The right password during the lockout fails too, without being checked.
        Assert.False(await page.SignInAsync("ada@acme.test", Password));
        Assert.Equal(41, (await ParallelSignInPage.LoggedReasonsAsync(factory, "acme")).Count(r => r == "account_locked"));

        // The lockout ends with the service's clock.
        factory.Time.Advance(TimeSpan.FromMinutes(11));
        Assert.True(await page.SignInAsync("ada@acme.test", Password));
    }
}
