using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using IdentityService.Data;
using IdentityService.Oidc;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Server;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// Refresh tokens have no row: a sign-in's authorization counts which of them is live, and a reuse of an older
/// one revokes the sign-in, with the same results a person or client saw with token rows.
/// </summary>
public sealed class TokenFamilyTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
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

    [Fact]
    public async Task RevokingAFamily_HoldsEvenWhenARefreshMovedItOnSinceItWasRead()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = JsonDocument.Parse(await (await flow.RedeemAsync(await flow.GetCodeAsync("ada@acme.test", Password))).Content.ReadAsStringAsync()).RootElement;
        var authorizationId = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(tokens.GetProperty("access_token").GetString()!).GetClaim("oi_au_id").Value;

        // A revocation (a reuse detected, RFC 7009) reads the family; a refresh by its holder lands before it writes.
        using var scope = await _factory.TenantScopeAsync("acme");
        var authorizations = scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictAuthorizationManager>();
        Assert.NotNull(await authorizations.FindByIdAsync(authorizationId));
        var live = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!));
        await scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictTokenManager>().RevokeByAuthorizationIdAsync(authorizationId);

        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(live)).StatusCode);
    }

    [Fact]
    public async Task Refreshes_WriteNoTokenRow_AndMoveTheirSignInsAuthorizationOnByOneEach()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var code = await flow.GetCodeAsync("ada@acme.test", Password);
        var refresh = await OidcFlow.RefreshTokenOfAsync(await flow.RedeemAsync(code));
        Assert.Equal(new[] { 0 }, await GenerationsAsync());

        refresh = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(refresh));
        refresh = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(refresh));

        Assert.Equal(new[] { 2 }, await GenerationsAsync());
        // The code alone has a row (it stays a short reference in the redirect, and its row makes it single-use).
        Assert.Equal(1, await TokenRowsAsync());
        Assert.Equal(HttpStatusCode.OK, (await flow.RefreshAsync(refresh)).StatusCode);
    }

    [Fact]
    public async Task ParallelRefreshes_WithOneToken_AtMostOneSucceeds_AndTheRestRevokeTheSignIn()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        var refresh = tokens.GetProperty("refresh_token").GetString()!;

        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => flow.RefreshAsync(refresh)));

        Assert.True(answers.Count(a => a.StatusCode == HttpStatusCode.OK) <= 1);
        Assert.All(answers.Where(a => a.StatusCode != HttpStatusCode.OK), a => Assert.Equal(HttpStatusCode.BadRequest, a.StatusCode));
        // The token was used more than once: none of what the sign-in issued works any more.
        foreach (var winner in answers.Where(a => a.StatusCode == HttpStatusCode.OK))
        {
            Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(await OidcFlow.RefreshTokenOfAsync(winner))).StatusCode);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(tokens.GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task WithAReuseLeeway_TheTokenJustRotatedAwayWorksWithinIt_AndRevokesTheSignInAfterIt()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { settings = new { refreshTokenReuseLeewaySeconds = 30 } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var first = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;
        var second = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(first));

        // A client whose answer was lost retries with the same token, within the leeway: it works, and the
        // newest token still does too.
        _factory.Time.Advance(TimeSpan.FromSeconds(20));
        var retried = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(first));
        Assert.Equal(HttpStatusCode.OK, (await flow.RefreshAsync(second)).StatusCode);

        // Past the leeway of that last rotation, an older token is a reuse: the whole sign-in goes.
        _factory.Time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(retried)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(second)).StatusCode);
    }

    [Fact]
    public async Task AReplayedCode_IsRefused_EvenWithinARefreshLeeway()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme", new { settings = new { refreshTokenReuseLeewaySeconds = 60 } }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var code = await flow.GetCodeAsync("ada@acme.test", Password);
        var refresh = await OidcFlow.RefreshTokenOfAsync(await flow.RedeemAsync(code));

        var replay = await flow.RedeemAsync(code);

        Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);
        Assert.Contains("invalid_grant", await replay.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(refresh)).StatusCode);
    }

    [Fact]
    public async Task RevokingARefreshToken_EndsItsSignIn_AndItsAccessTokens()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        var access = tokens.GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, await flow.UserInfoStatusAsync(access));

        var revoked = await browser.PostAsync("/t/acme/connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = tokens.GetProperty("refresh_token").GetString()!,
            ["token_type_hint"] = "refresh_token",
            ["client_id"] = "web",
        }));

        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(access));
    }

    [Fact]
    public async Task ATamperedRefreshToken_IsRefused_AndOneSignInsRotationLeavesAnotherAlone()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var one = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;
        var other = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;

        // Tampering with the encrypted token breaks it; and one sign-in's rotation leaves the other alone.
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(one[..^4] + "AAAA")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await flow.RefreshAsync(one)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await flow.RefreshAsync(other)).StatusCode);
    }

    [Fact]
    public async Task RefreshTokens_IssuedWithRowsBeforeTheUpgrade_StillWorkOnce_AndTheirReuseRevokesTheSignIn()
    {
        // The service as it was: refresh tokens with rows.
        using var before = Without(TokenFamilies.IssueWithoutRow.Descriptor);
        using var oldBrowser = before.CreateBrowser();
        var oldFlow = new OidcFlow(oldBrowser, "acme", "web");
        var oldRefresh = (await oldFlow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;
        var oldCode = await oldFlow.GetCodeAsync("ada@acme.test", Password);
        Assert.Equal(3, await TokenRowsAsync());

        // After the upgrade: the old refresh token and the code are honoured once, and what they give is row-less.
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var fromCode = await OidcFlow.RefreshTokenOfAsync(await flow.RedeemAsync(oldCode, oldFlow.Verifier));
        var rotated = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(oldRefresh));
        Assert.Equal(HttpStatusCode.OK, (await flow.RefreshAsync(fromCode)).StatusCode);

        // The old refresh token again: a reuse, which revokes its sign-in and what it gave.
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(oldRefresh)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(rotated)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RedeemAsync(oldCode, oldFlow.Verifier)).StatusCode);
    }

    [Fact]
    public async Task RefreshesArrivingTogether_AreCommittedTogether_EachSignInMovedOnOnce_AndATokenSentTwiceIsAReuse()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            tokens.Add((await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!);
        }

        var twice = await flow.SignInAsync("ada@acme.test", Password);
        var advances = _factory.Services.GetRequiredService<FamilyAdvances>();
        var committed = advances.Committed;

        // On SQLite another write holds the database while the refreshes arrive: they queue, and go in one commit.
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        var sqlite = db is SqliteIdentityDb;
        var release = new TaskCompletionSource();
        var holding = sqlite ? db.InTurnAsync(async _ => { await release.Task; return 0; }, CancellationToken.None) : Task.FromResult(0);
        var refreshes = tokens.Select(t => flow.RefreshAsync(t)).ToList();
        var sameToken = twice.GetProperty("refresh_token").GetString()!;
        refreshes.Add(flow.RefreshAsync(sameToken));
        refreshes.Add(flow.RefreshAsync(sameToken));
        if (sqlite)
        {
            // One taken by the writer, which waits for the database; the seven others queued behind it.
            await Eventually.TrueAsync(() => advances.Queued == 7, "The refreshes did not queue for one commit.");
            Assert.All(refreshes, r => Assert.False(r.IsCompleted));
        }

        release.SetResult();
        await holding;
        var answers = await Task.WhenAll(refreshes);
        var after = advances.Committed;

        // Each of the six sign-ins moved on once, and its new token works while its old one is a reuse.
        for (var i = 0; i < 6; i++)
        {
            var next = await OidcFlow.RefreshTokenOfAsync(answers[i]);
            Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(tokens[i])).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(next)).StatusCode);
        }

        // The token sent twice: one answer at most, and the sign-in is revoked with what it issued.
        Assert.Equal(1, answers[6..].Count(a => a.StatusCode == HttpStatusCode.OK));
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(twice.GetProperty("access_token").GetString()!));
        if (sqlite)
        {
            Assert.Equal((committed.Batches + 1, committed.Advances + 8), after);
        }
    }

    [Fact]
    public async Task MovingAFamilyOn_FromAnotherTenant_TouchesNothing_AndItsOwnTenantsRefreshStillWorks()
    {
        await _factory.CreateTenantAsync("globex");
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var refresh = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;
        Guid family;
        using (var acme = await _factory.TenantScopeAsync("acme"))
        {
            family = await acme.ServiceProvider.GetRequiredService<IdentityDb>().Authorizations.Select(a => a.Id).SingleAsync();
        }

        // Another tenant's context names the family's id and generation: no row of acme is moved.
        using (var globex = await _factory.TenantScopeAsync("globex"))
        {
            var db = globex.ServiceProvider.GetRequiredService<IdentityDb>();
            var moved = await _factory.Services.GetRequiredService<FamilyAdvances>()
                .AdvanceAsync(db, family, 0, 1, _factory.Time.GetUtcNow(), Guid.NewGuid().ToString(), CancellationToken.None);
            Assert.Equal(0, moved);
        }

        Assert.Equal(new[] { 0 }, await GenerationsAsync());
        Assert.Equal(HttpStatusCode.OK, (await flow.RefreshAsync(refresh)).StatusCode);
        Assert.Equal(new[] { 1 }, await GenerationsAsync());
    }

    [Fact]
    public async Task ARefresh_OnPostgreSql_ReadsItsUserAndMovesItsFamilyInOneBatch_AndOnSqliteInTheGroupCommit()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var refresh = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;
        var advances = _factory.Services.GetRequiredService<FamilyAdvances>();
        var (committed, withUserReads) = (advances.Committed, advances.WithUserReads);
        bool postgres;
        using (var scope = await _factory.TenantScopeAsync("acme"))
        {
            postgres = scope.ServiceProvider.GetRequiredService<IdentityDb>() is PostgreSqlIdentityDb;
        }

        var next = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(refresh));

        Assert.Equal(new[] { 1 }, await GenerationsAsync());
        if (postgres)
        {
            Assert.Equal((committed, withUserReads + 1), (advances.Committed, advances.WithUserReads));
        }
        else
        {
            Assert.Equal((committed.Batches + 1, committed.Advances + 1, withUserReads), (advances.Committed.Batches, advances.Committed.Advances, advances.WithUserReads));
        }

        // Rotation and reuse detection as on any path: the old token is a reuse, and ends the sign-in.
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(refresh)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(next)).StatusCode);
    }

    [Fact]
    public async Task TheUserReadSentWithTheFamilyUpdate_FindsWhatFindAsyncFinds_AndNothingOfAnotherTenant()
    {
        await _factory.CreateTenantAsync("globex");
        // Every column read, null in one user and set in the other (an update sets the update time).
        var grace = await _factory.CreateUserAsync("acme", "grace@acme.test", Password, new
        {
            name = "Grace Hopper", givenName = "Grace", familyName = "Hopper", phoneNumber = "+15555550100",
            emailVerified = true, phoneNumberVerified = true,
        });
        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{grace}", new { locale = "en-US" }, HttpStatusCode.OK);
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        var ada = await UserIdAsync("ada@acme.test");
        Guid family;
        using (var acme = await _factory.TenantScopeAsync("acme"))
        {
            family = await acme.ServiceProvider.GetRequiredService<IdentityDb>().Authorizations.Select(a => a.Id).SingleAsync();
        }

        var advances = _factory.Services.GetRequiredService<FamilyAdvances>();
        var now = _factory.Time.GetUtcNow();
        using (var globex = await _factory.TenantScopeAsync("globex"))
        {
            var db = globex.ServiceProvider.GetRequiredService<IdentityDb>();
            if (db is SqliteIdentityDb)
            {
                // SQLite moves families in its group commit only.
                await Assert.ThrowsAsync<InvalidOperationException>(() => advances.ReadUserAndAdvanceAsync(db, ada, family, 0, 1, now, "x", CancellationToken.None));
                return;
            }

            // Another tenant names acme's user and family: it reads no user and moves nothing.
            Assert.Equal((null, 0), await advances.ReadUserAndAdvanceAsync(db, ada, family, 0, 1, now, Guid.NewGuid().ToString(), CancellationToken.None));
        }

        Assert.Equal(new[] { 0 }, await GenerationsAsync());
        using (var acme = await _factory.TenantScopeAsync("acme"))
        {
            var db = acme.ServiceProvider.GetRequiredService<IdentityDb>();
            foreach (var user in new[] { ada, Guid.Parse(grace) })
            {
                var alone = await IdentityService.Users.UserProfiles.FindAsync(db, user.ToString(), CancellationToken.None);
                var (read, _) = await advances.ReadUserAndAdvanceAsync(db, user, Guid.NewGuid(), 0, 1, now, Guid.NewGuid().ToString(), CancellationToken.None);
                Assert.Equal(JsonSerializer.Serialize(alone), JsonSerializer.Serialize(read));
            }

            var graceRead = (await advances.ReadUserAndAdvanceAsync(db, Guid.Parse(grace), Guid.NewGuid(), 0, 1, now, Guid.NewGuid().ToString(), CancellationToken.None)).User!;
            Assert.True(graceRead is { EmailConfirmed: true, PhoneNumberConfirmed: true, UpdatedAt: not null, Locale: "en-US" });

            var (found, moved) = await advances.ReadUserAndAdvanceAsync(db, ada, family, 0, 1, now, Guid.NewGuid().ToString(), CancellationToken.None);
            Assert.Equal((ada, 1), (found?.Id ?? Guid.Empty, moved));
            Assert.Equal((null, 0), await advances.ReadUserAndAdvanceAsync(db, Guid.NewGuid(), family, 0, 1, now, Guid.NewGuid().ToString(), CancellationToken.None));
        }

        Assert.Equal(new[] { 1 }, await GenerationsAsync());
    }

    private async Task<Guid> UserIdAsync(string email)
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        return await db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
    }

    [Fact]
    public async Task ARefreshToken_WorksUntilItsLifetimeEnds_AndIsRefusedAfter()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var refresh = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;

        // The tenant's refresh tokens live 14 days: one used a minute before works, its successor a day after does not.
        _factory.Time.Advance(TimeSpan.FromDays(14) - TimeSpan.FromMinutes(1));
        var next = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(refresh));
        _factory.Time.Advance(TimeSpan.FromDays(15));
        var expired = await flow.RefreshAsync(next);
        Assert.Equal(HttpStatusCode.BadRequest, expired.StatusCode);
        Assert.Contains("invalid_grant", await expired.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RefreshTokens_IssuedAsJwtsBeforeTheUpgrade_StillWorkOnce_TheirSuccessorsAreSealed_AndTheirReuseRevokesTheSignIn()
    {
        // The service as it was: refresh tokens as encrypted JWTs.
        using var before = Without(SealedRefreshTokens.Seal.Descriptor);
        using var oldBrowser = before.CreateBrowser();
        var oldFlow = new OidcFlow(oldBrowser, "acme", "web");
        var jwt = (await oldFlow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;
        Assert.Equal(4, jwt.Count(c => c == '.'));

        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var sealedToken = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(jwt));
        Assert.DoesNotContain('.', sealedToken);
        var next = await OidcFlow.RefreshTokenOfAsync(await flow.RefreshAsync(sealedToken));

        // The JWT again: a reuse, which revokes its sign-in, and so the sealed token it led to.
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(jwt)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(next)).StatusCode);
    }

    /// <summary>The service as an earlier version ran it, on the same database: without <paramref name="handler"/>.</summary>
    private IdentityServiceFactory Without(OpenIddictServerHandlerDescriptor handler) => new(_factory)
    {
        Output = output,
        ConfigureServices = services => services.PostConfigure<OpenIddictServerOptions>(o => o.Handlers.Remove(handler)),
    };


    private async Task<int[]> GenerationsAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        return [.. await db.Authorizations.Select(a => a.TokenGeneration).ToListAsync()];
    }

    private async Task<int> TokenRowsAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        return await scope.ServiceProvider.GetRequiredService<IdentityDb>().Tokens.CountAsync();
    }
}
