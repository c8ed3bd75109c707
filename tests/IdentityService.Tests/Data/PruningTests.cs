using System.Net;
using System.Text.Json;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Mfa;
using IdentityService.Oidc;
using IdentityService.Protection;
using IdentityService.Tests.Infrastructure;
using IdentityService.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Abstractions;

namespace IdentityService.Tests.Data;

/// <summary>
/// Tables written at every sign-in do not grow for ever: what can no longer be used is deleted, and nothing that
/// can still be used is.
/// </summary>
public sealed class PruningTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    private Pruning Pruner => _factory.Services.GetRequiredService<Pruning>();

    [Fact]
    public async Task ASignIn_WhoseTokensHaveAllExpired_IsDeleted_WhileSignInsStillRefreshingStay()
    {
        // Day 0: two sign-ins; one of them refreshes on day 10. Day 10: a third sign-in.
        var (abandoned, _) = await SignInAsync("acme");
        var (refreshing, refreshingFlow) = await SignInAsync("acme");
        _factory.Time.Advance(TimeSpan.FromDays(10));
        refreshing = await OidcFlow.RefreshTokenOfAsync(await refreshingFlow.RefreshAsync(refreshing));
        var (recent, recentFlow) = await SignInAsync("acme");
        Assert.Equal(3, await CountAsync("acme", db => db.Authorizations));
        Assert.Equal(3, await CountAsync("acme", db => db.Tokens));

        // Day 15 and a minute: the first sign-in's refresh token (14 days) expired more than a day ago.
        _factory.Time.Advance(TimeSpan.FromDays(5).Add(TimeSpan.FromMinutes(1)));
        var pruned = await Pruner.PruneAsync(CancellationToken.None);

        Assert.Equal(1, pruned["authorizations"]);
        Assert.Equal(3, pruned["tokens"]);
        Assert.Equal(2, await CountAsync("acme", db => db.Authorizations));
        Assert.Equal(0, await CountAsync("acme", db => db.Tokens));
        Assert.Equal(HttpStatusCode.OK, (await refreshingFlow.RefreshAsync(refreshing)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await recentFlow.RefreshAsync(recent)).StatusCode);
        Assert.NotNull(abandoned);

        // A second pass finds nothing more.
        Assert.All((await Pruner.PruneAsync(CancellationToken.None)).Values, count => Assert.Equal(0, count));
    }

    [Fact]
    public async Task EachTenant_KeepsItsSignIns_ForItsOwnLifetimes()
    {
        await _factory.CreateTenantAsync("longer");
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/longer", new { settings = new { refreshTokenLifetimeSeconds = 30 * 86_400 } }, HttpStatusCode.OK);
        await _factory.CreateWebClientAsync("longer");
        await _factory.CreateUserAsync("longer", "ada@acme.test", Password);
        await SignInAsync("acme");
        var (longer, longerFlow) = await SignInAsync("longer");

        _factory.Time.Advance(TimeSpan.FromDays(20));
        var pruned = await Pruner.PruneAsync(CancellationToken.None);

        Assert.Equal(1, pruned["authorizations"]);
        Assert.Equal(0, await CountAsync("acme", db => db.Authorizations));
        Assert.Equal(1, await CountAsync("longer", db => db.Authorizations));
        Assert.Equal(HttpStatusCode.OK, (await longerFlow.RefreshAsync(longer)).StatusCode);
    }

    [Fact]
    public async Task ATokenWhoseSignInIsGone_IsRefusedAsARevokedOneIs()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            await db.Tokens.ExecuteDeleteAsync();
            await db.Authorizations.ExecuteDeleteAsync();
        }

        var refresh = await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.BadRequest, refresh.StatusCode);
        Assert.Contains("invalid_grant", await refresh.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(tokens.GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task AWithdrawnConsent_IsDeleted_AndAGivenOneStays()
    {
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            var applications = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
            var authorizations = scope.ServiceProvider.GetRequiredService<IOpenIddictAuthorizationManager>();
            var client = await applications.FindByClientIdAsync("web");
            foreach (var status in new[] { OpenIddictConstants.Statuses.Valid, OpenIddictConstants.Statuses.Revoked })
            {
                await authorizations.CreateAsync(new OpenIddictAuthorizationDescriptor
                {
                    ApplicationId = await applications.GetIdAsync(client!),
                    CreationDate = _factory.Time.GetUtcNow(),
                    Status = status,
                    Subject = "someone",
                    Type = OpenIddictConstants.AuthorizationTypes.Permanent,
                });
            }
        }

        _factory.Time.Advance(TimeSpan.FromDays(400));
        var pruned = await Pruner.PruneAsync(CancellationToken.None);

        Assert.Equal(1, pruned["authorizations"]);
        using var after = await _factory.TenantScopeAsync("acme");
        var left = await after.ServiceProvider.GetRequiredService<IdentityDb>().Authorizations.Select(a => a.Status).ToListAsync();
        Assert.Equal([OpenIddictConstants.Statuses.Valid], left);
    }

    [Fact]
    public async Task ExpiredChallengesBrowsersAndLinks_AreDeleted_A_DayAfterTheyExpire()
    {
        var user = Guid.NewGuid();
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            var now = _factory.Time.GetUtcNow();
            foreach (var expires in new[] { now.AddMinutes(10), now.AddDays(30) })
            {
                db.Add(new MfaChallenge { Id = Guid.NewGuid(), UserId = user, TokenHash = [1, (byte)expires.Day], CreatedAt = now, ExpiresAt = expires });
                db.Add(new TrustedBrowser { Id = Guid.NewGuid(), UserId = user, TokenHash = [2, (byte)expires.Day], CreatedAt = now, ExpiresAt = expires });
                db.Add(new PasswordResetToken { Id = Guid.NewGuid(), UserId = user, TokenHash = [3, (byte)expires.Day], CreatedAt = now, ExpiresAt = expires });
                db.Add(new PendingSignUp
                {
                    Id = Guid.NewGuid(), Email = "new@acme.test", NormalizedEmail = "NEW@ACME.TEST", PasswordHash = "x", TokenHash = [4, (byte)expires.Day], CreatedAt = now, ExpiresAt = expires,
                });
                db.Add(new RevokedToken { TokenId = Guid.NewGuid().ToString(), ExpiresAt = expires });
            }

            await db.SaveChangesAsync();
        }

        // Expired, but less than a day ago: kept (the revoked-token list needs no grace: an expired token is refused anyway).
        _factory.Time.Advance(TimeSpan.FromHours(12));
        var first = await Pruner.PruneAsync(CancellationToken.None);
        Assert.Equal(0, first["mfaChallenges"] + first["trustedBrowsers"] + first["passwordResetTokens"] + first["pendingSignUps"]);
        Assert.Equal(1, first["revokedTokens"]);

        _factory.Time.Advance(TimeSpan.FromHours(13));
        var second = await Pruner.PruneAsync(CancellationToken.None);
        Assert.Equal(1, second["mfaChallenges"]);
        Assert.Equal(1, second["trustedBrowsers"]);
        Assert.Equal(1, second["passwordResetTokens"]);
        Assert.Equal(1, second["pendingSignUps"]);
        Assert.Equal(1, await CountAsync("acme", db => db.Set<MfaChallenge>()));
        Assert.Equal(1, await CountAsync("acme", db => db.Set<TrustedBrowser>()));
        Assert.Equal(1, await CountAsync("acme", db => db.Set<PasswordResetToken>()));
        Assert.Equal(1, await CountAsync("acme", db => db.Set<PendingSignUp>()));
        Assert.Equal(1, await CountAsync("acme", db => db.Set<RevokedToken>()));
    }

    [Fact]
    public async Task AuditEntries_PastTheirTenantsRetention_AreDeleted_AndAWholeLogStays()
    {
        await _factory.CreateTenantAsync("keeps");
        await _factory.CreateWebClientAsync("keeps");
        await _factory.CreateUserAsync("keeps", "ada@acme.test", Password);
        var refused = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { settings = new { auditRetentionDays = 3 } });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("auditRetentionDays", await refused.Content.ReadAsStringAsync());
        var set = await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { settings = new { auditRetentionDays = 30 } }, HttpStatusCode.OK);
        Assert.Equal(30, set["settings"]!["auditRetentionDays"]!.GetValue<int>());

        // Day 0 and day 20: a sign-in at each tenant. Day 35: acme keeps 30 days, "keeps" everything.
        await SignInAsync("acme");
        await SignInAsync("keeps");
        _factory.Time.Advance(TimeSpan.FromDays(20));
        var day20 = _factory.Time.GetUtcNow();
        await SignInAsync("acme");
        await SignInAsync("keeps");
        _factory.Time.Advance(TimeSpan.FromDays(15));
        var before = await CountAsync("acme", db => db.Set<AuditEvent>());
        var keeps = await CountAsync("keeps", db => db.Set<AuditEvent>());

        var pruned = await Pruner.PruneAsync(CancellationToken.None);

        var left = await TimesAsync("acme");
        Assert.NotEmpty(left);
        Assert.All(left, t => Assert.True(t >= day20, $"An entry of {t} outlived the tenant's 30 days."));
        Assert.Equal(before - left.Count, pruned["auditEvents"]);
        Assert.True(pruned["auditEvents"] > 0);
        Assert.Equal(keeps, await CountAsync("keeps", db => db.Set<AuditEvent>()));
    }

    [Fact]
    public async Task DevicesAndCountries_NotSeenForLongerThanADeviceKeepsItsId_AreDeleted()
    {
        var now = _factory.Time.GetUtcNow();
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
            var user = Guid.NewGuid();
            db.Add(new UserSighting { Id = Guid.NewGuid(), UserId = user, Kind = UserSighting.Device, Value = "old", FirstSeen = now.AddDays(-10), LastSeen = now.AddDays(-10) });
            db.Add(new UserSighting { Id = Guid.NewGuid(), UserId = user, Kind = UserSighting.Country, Value = "FR", FirstSeen = now.AddDays(-10), LastSeen = now });
            await db.SaveChangesAsync();
        }

        _factory.Time.Advance(TimeSpan.FromDays(395));
        Assert.Equal(1, (await Pruner.PruneAsync(CancellationToken.None))["userSightings"]);
        using var after = await _factory.TenantScopeAsync("acme");
        Assert.Equal(["FR"], await after.ServiceProvider.GetRequiredService<IdentityDb>().Set<UserSighting>().Select(s => s.Value).ToListAsync());
    }

    [Fact]
    public async Task TheServiceRunsAPass_EveryInterval_ByItsClock()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        factory.Settings["Database:PruneIntervalMinutes"] = "60";
        await factory.CreateTenantAsync("acme");
        await factory.CreateWebClientAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", Password);
        using var browser = factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        factory.Time.Advance(TimeSpan.FromDays(16));

        await Eventually.TrueAsync(async () =>
        {
            using var scope = await factory.TenantScopeAsync("acme");
            return !await scope.ServiceProvider.GetRequiredService<IdentityDb>().Authorizations.AnyAsync();
        });
    }

    private async Task<(string RefreshToken, OidcFlow Flow)> SignInAsync(string tenant)
    {
        var flow = new OidcFlow(_factory.CreateBrowser(), tenant, "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        return (tokens.GetProperty("refresh_token").GetString()!, flow);
    }

    private async Task<List<DateTimeOffset>> TimesAsync(string tenant)
    {
        using var scope = await _factory.TenantScopeAsync(tenant);
        return await scope.ServiceProvider.GetRequiredService<IdentityDb>().Set<AuditEvent>().Select(e => e.Time).ToListAsync();
    }

    private async Task<int> CountAsync<T>(string tenant, Func<IdentityDb, IQueryable<T>> rows)
    {
        using var scope = await _factory.TenantScopeAsync(tenant);
        return await rows(scope.ServiceProvider.GetRequiredService<IdentityDb>()).CountAsync();
    }
}
