using System.Net;
using System.Text.Json;
using IdentityService.Pipeline;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Pipeline;

public sealed class PipelineTests(ITestOutputHelper output)
{
    private const string Password = "correct horse battery staple";

    [Fact]
    public async Task CustomStep_RegisteredByATest_RunsInItsOrder_AndItsDenialLooksLikeAnyOther()
    {
        using var factory = new IdentityServiceFactory { Output = output, ConfigureServices = services => services.AddSignInStep<DenyNightOwls>() };
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "owl@acme.test", Password);
        await factory.CreateUserAsync("acme", "lark@acme.test", Password);
        var page = new SignInPage(factory.CreateBrowser(), "acme");

        Assert.True((await page.PostAsync("owl@acme.test", Password)).Refused);
        Assert.True((await page.PostAsync("lark@acme.test", Password)).SignedIn);

        var owl = (await factory.SignInEventsAsync("acme"))[0];
        Assert.Equal("DenyNightOwls", owl.DecidedBy);
        Assert.Equal("night_owl", owl.Reason);
        var steps = JsonDocument.Parse(owl.Trace!).RootElement.EnumerateArray().Select(s => s.GetProperty("step").GetString()).ToList();
        Assert.Equal(["EnforceSignInRateLimit", "CheckIpBlock", "FindAccount", "DenyNightOwls"], steps);
    }

    [Fact]
    public async Task Credentials_InTheUrl_AreNeverRead_OnlyThoseInThePostBody()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", Password);
        var page = new SignInPage(factory.CreateBrowser(), "acme");
        var inUrl = $"?Email=ada%40acme.test&Password={Uri.EscapeDataString(Password)}";

        var both = await page.PostAsync(null, null, query: inUrl);
        var passwordOnly = await page.PostAsync("ada@acme.test", null, query: inUrl);
        var body = await page.PostAsync("ada@acme.test", Password, query: "?Email=nobody%40acme.test&Password=wrong");

        Assert.True(both.Refused);
        Assert.True(passwordOnly.Refused);
        Assert.True(body.SignedIn);
    }

    [Theory]
    [InlineData("//evil.example/x", "/t/acme/")]
    [InlineData("/\\evil.example/x", "/t/acme/")]
    [InlineData("https://evil.example/x", "/t/acme/")]
    [InlineData("/t/other/x", "/t/acme/")]
    [InlineData("/t/acme/\tx", "/t/acme/")]
    [InlineData("/t/acme/x\r\nSet-Cookie: a=b", "/t/acme/")]
    [InlineData("/t/acme/../other/connect/authorize", "/t/acme/")]
    [InlineData("/t/acme/%2e%2e/other/", "/t/acme/")]
    [InlineData("/t/acme/./%2E./other/", "/t/acme/")]
    [InlineData("/t/acme/connect/authorize?client_id=web", "/t/acme/connect/authorize?client_id=web")]
    [InlineData("/t/acme/account?back=..", "/t/acme/account?back=..")]
    public async Task AfterSignIn_TheReturnUrlIsFollowedOnlyInsideTheTenant(string returnUrl, string expected)
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", Password);

        var answer = await new SignInPage(factory.CreateBrowser(), "acme")
            .PostAsync("ada@acme.test", Password, fields: new Dictionary<string, string> { ["ReturnUrl"] = returnUrl });

        Assert.True(answer.SignedIn);
        Assert.Equal(expected, answer.Location?.OriginalString);
    }

    [Fact]
    public async Task EveryAttempt_LeavesATrace_WithIpUserAgentAccountAndDecisions()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        var userId = await factory.CreateUserAsync("acme", "ada@acme.test", Password);
        var page = new SignInPage(factory.CreateBrowser(), "acme");

        await page.PostAsync("ada@acme.test", "wrong", ip: "192.0.2.44", headers: new Dictionary<string, string> { ["User-Agent"] = "TestBrowser/1.0" });
        await page.PostAsync("nobody@acme.test", "wrong", ip: "192.0.2.44");

        var events = await factory.SignInEventsAsync("acme");
        Assert.Equal(2, events.Count);
        Assert.Equal("failed", events[0].Outcome);
        Assert.Equal("invalid_credentials", events[0].Reason);
        Assert.Equal(Guid.Parse(userId), events[0].UserId);
        Assert.Equal("192.0.2.44", events[0].Ip);
        Assert.Equal("TestBrowser/1.0", events[0].UserAgent);
        Assert.Equal("VerifyPassword", events[0].DecidedBy);
        Assert.Contains("wrong password", events[0].Trace);
        Assert.Null(events[1].UserId);
        Assert.Equal("invalid_credentials", events[1].Reason);
        Assert.Contains("unknown email", events[1].Trace);
    }

    [Fact]
    public async Task StepUp_ChallengesANewDevice_AndAnIpThatFailedAgainstOtherAccounts_NotAFamiliarDevice()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", Password);
        var home = factory.CreateBrowser();
        Assert.True((await new SignInPage(home, "acme").PostAsync("ada@acme.test", Password, ip: "192.0.2.1")).SignedIn);
        await factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { stepUp = new { enabled = true, newCountry = false } } }, HttpStatusCode.OK);

        // A familiar device from a quiet IP: no step-up.
        Assert.True((await new SignInPage(home, "acme").PostAsync("ada@acme.test", Password, ip: "192.0.2.1")).SignedIn);

        // A device never seen for this account: the second factor is asked.
        var café = await new SignInPage(factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password, ip: "192.0.2.1");
        Assert.Contains("second factor", café.Html);

        // The familiar device, but from an IP that just failed against other accounts.
        var attacker = new SignInPage(factory.CreateBrowser(), "acme");
        await attacker.PostAsync("bob@acme.test", "guess", ip: "198.51.100.5");
        var risky = await new SignInPage(home, "acme").PostAsync("ada@acme.test", Password, ip: "198.51.100.5");
        Assert.Contains("second factor", risky.Html);

        var events = await factory.SignInEventsAsync("acme");
        var challenged = events.Where(e => e.Outcome == "challenged").ToList();
        Assert.Equal(2, challenged.Count);
        Assert.All(challenged, e => Assert.Equal("RequireSecondFactor", e.DecidedBy));
        Assert.Contains("new_device", challenged[0].Trace);
        Assert.Contains("ip_failed_recently", challenged[1].Trace);
        Assert.DoesNotContain("new_device", challenged[1].Trace);
    }

    [Fact]
    public async Task MfaRequired_ChallengesEverySignIn_ButMfaOffNeverAsks()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", Password);
        var page = new SignInPage(factory.CreateBrowser(), "acme");
        Assert.True((await page.PostAsync("ada@acme.test", Password)).SignedIn);

        await factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { mfa = new { mode = "required" } }, HttpStatusCode.OK);

        // The second step's page (SecondFactorTests covers it), where the account sets up its first factor.
        var answer = await new SignInPage(factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password);
        Assert.Equal(HttpStatusCode.Redirect, answer.Status);
        Assert.StartsWith("/t/acme/mfa?", answer.Location!.OriginalString);
        Assert.Equal("mfa_required", (await factory.SignInEventsAsync("acme"))[^1].Reason);
    }

    [Fact]
    public async Task RefusalBeforeThePassword_SpendsOneHashLikeAWrongPassword_ButARateLimitedOneSpendsNone()
    {
        var hasher = new CountingHasher();
        using var factory = new IdentityServiceFactory
        {
            Output = output,
            ConfigureServices = services => services.AddSingleton<Microsoft.AspNetCore.Identity.IPasswordHasher<IdentityService.Users.AppUser>>(hasher),
        };
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", Password);
        await factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy",
            new { ipRules = new { deny = new[] { "198.51.100.0/24" } }, rateLimits = new { signInPerIpPerMinute = 1 } }, HttpStatusCode.OK);
        var page = new SignInPage(factory.CreateBrowser(), "acme");

        var before = hasher.Verifications;
        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "198.51.100.9")).Refused);
        Assert.Equal(before + 1, hasher.Verifications);

        Assert.True((await page.PostAsync("ada@acme.test", "wrong", ip: "192.0.2.9")).Refused);
        Assert.Equal(before + 2, hasher.Verifications);

        Assert.True((await page.PostAsync("ada@acme.test", Password, ip: "192.0.2.9")).Refused);
        Assert.Equal(before + 2, hasher.Verifications);
        Assert.Equal("rate_limited", (await factory.SignInEventsAsync("acme"))[^1].Reason);
    }

    /// <summary>ASP.NET Core Identity's own hasher, counting its verifications.</summary>
    private sealed class CountingHasher : Microsoft.AspNetCore.Identity.IPasswordHasher<IdentityService.Users.AppUser>
    {
        private readonly Microsoft.AspNetCore.Identity.PasswordHasher<IdentityService.Users.AppUser> _inner = new();
        private int _verifications;

        public int Verifications => Volatile.Read(ref _verifications);

        public string HashPassword(IdentityService.Users.AppUser user, string password) => _inner.HashPassword(user, password);

        public Microsoft.AspNetCore.Identity.PasswordVerificationResult VerifyHashedPassword(IdentityService.Users.AppUser user, string hashedPassword, string providedPassword)
        {
            Interlocked.Increment(ref _verifications);
            return _inner.VerifyHashedPassword(user, hashedPassword, providedPassword);
        }
    }

    /// <summary>A protection a test adds: it refuses accounts whose email starts with "owl".</summary>
    private sealed class DenyNightOwls : ISignInStep
    {
        public string Name => nameof(DenyNightOwls);

        public int Order => 6500;

        public bool IsEnabled(SignInContext context) => true;

        public ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken) =>
            ValueTask.FromResult(context.Email.StartsWith("owl", StringComparison.Ordinal) ? StepDecision.Deny("night_owl") : StepDecision.Continue());
    }
}
