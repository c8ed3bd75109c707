using IdentityService.Data;
using IdentityService.Tenancy;
using IdentityService.Tests.Infrastructure;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace IdentityService.Tests.Users;

public sealed class PasswordHashingTests(ITestOutputHelper output) : IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task StoredPassword_IsASaltedSlowHash_NeverThePassword()
    {
        await _factory.CreateTenantAsync("acme");
        var id = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
        var other = await _factory.CreateUserAsync("acme", "bob@acme.test", Password);

        var first = await HashOfAsync(id);
        var second = await HashOfAsync(other);

        Assert.DoesNotContain(Password, first);
        Assert.NotEqual(first, second);
        Assert.Equal(210_000, IterationsOf(first));
    }

    [Fact]
    public async Task HashIterations_AreConfigurable_AndTheDummyHashOfRefusedAttemptsCostsTheSame()
    {
        _factory.Settings["Passwords:HashIterations"] = "250000";
        await _factory.CreateTenantAsync("acme");
        var id = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);

        using var scope = _factory.Services.CreateScope();
        var dummy = scope.ServiceProvider.GetRequiredService<IdentityService.SignIn.DummyPasswordHash>()
            .Get(scope.ServiceProvider.GetRequiredService<IPasswordHasher<AppUser>>());

        Assert.Equal(250_000, IterationsOf(await HashOfAsync(id)));
        Assert.Equal(250_000, IterationsOf(dummy));
    }

    [Fact]
    public async Task SignIn_WithAHashOfOlderParameters_RehashesItWithTodays()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        var id = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
        // Identity's own default (100,000 iterations): what versions before 0.11 stored.
        var weak = new PasswordHasher<AppUser>(Options.Create(new PasswordHasherOptions())).HashPassword(new AppUser(), Password);
        Assert.Equal(100_000, IterationsOf(weak));
        await UpdateAsync(id, user => user.PasswordHash = weak);

        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        var rehashed = await HashOfAsync(id);
        Assert.NotEqual(weak, rehashed);
        Assert.Equal(210_000, IterationsOf(rehashed));
    }

    /// <summary>Identity's version 3 format: marker, PRF, iteration count (big-endian), salt length, salt, subkey.</summary>
    private static int IterationsOf(string hash)
    {
        var bytes = Convert.FromBase64String(hash);
        Assert.Equal(0x01, bytes[0]);
        return (bytes[5] << 24) | (bytes[6] << 16) | (bytes[7] << 8) | bytes[8];
    }

    private async Task<string> HashOfAsync(string userId)
    {
        string hash = "";
        await UpdateAsync(userId, user => hash = user.PasswordHash!);
        return hash;
    }

    private async Task UpdateAsync(string userId, Action<AppUser> change)
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var user = await db.Users.SingleAsync(u => u.Id == Guid.Parse(userId));
        change(user);
        await db.SaveChangesAsync();
    }
}
