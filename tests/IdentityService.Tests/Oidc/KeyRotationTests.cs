using System.Net;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// Keys rotate every 90 days: a successor is published 48 hours before it signs, and a replaced key
/// stays published, and able to decrypt, until the tokens it protected have expired.
/// </summary>
public sealed class KeyRotationTests(ITestOutputHelper output) : IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task Rotation_PublishesTheSuccessorFirst_KeepsLiveRefreshTokensWorking_ThenRetiresTheOldKey()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
        using var browser = _factory.CreateBrowser();
        var original = await KeyIdsAsync(browser);
        Assert.Equal(2, original.Count);

        // Day 90: the successors are published, the old keys still sign.
        _factory.Time.Advance(TimeSpan.FromDays(90) + TimeSpan.FromMinutes(1));
        var published = await KeyIdsAsync(browser);
        Assert.Equal(4, published.Count);
        Assert.Superset(original, published);
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        Assert.Contains(KeyId(tokens.GetProperty("id_token").GetString()!), original);
        Assert.Contains(KeyId(tokens.GetProperty("access_token").GetString()!), original);

        // 49 hours later the successors sign; a refresh token made by the old keys still works.
        _factory.Time.Advance(TimeSpan.FromHours(49));
        var refreshed = await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!);
        var body = await refreshed.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var renewed = JsonDocument.Parse(body).RootElement;
        Assert.DoesNotContain(KeyId(renewed.GetProperty("access_token").GetString()!), original);
        Assert.Superset(original, await KeyIdsAsync(browser));

        // Once every token the old keys signed has expired, they are no longer published.
        _factory.Time.Advance(TimeSpan.FromDays(15));
        var later = await KeyIdsAsync(browser);
        Assert.Equal(2, later.Count);
        Assert.Empty(later.Intersect(original));
    }

    [Fact]
    public async Task Replicas_PublishTheSameJwks_InTheSameOrder_WhileASuccessorIsPublished()
    {
        await _factory.CreateTenantAsync("acme");
        using var browser = _factory.CreateBrowser();
        await KeyIdsAsync(browser);
        _factory.Time.Advance(TimeSpan.FromDays(90) + TimeSpan.FromMinutes(1));
        var first = await browser.GetStringAsync("/t/acme/.well-known/jwks");

        using var replica = new IdentityServiceFactory(_factory) { Output = output };
        using var other = replica.CreateBrowser();
        var second = await other.GetStringAsync("/t/acme/.well-known/jwks");

        Assert.Equal(first, second);
        var keys = JsonDocument.Parse(first).RootElement.GetProperty("keys").EnumerateArray()
            .Select(k => k.GetProperty("alg").GetString()).ToList();
        Assert.Equal(["ES256", "ES256", "RS256", "RS256"], keys);
    }

    private static Task<HashSet<string>> KeyIdsAsync(HttpClient client) => Jwks.KeyIdsAsync(client, "acme");

    private static string KeyId(string jwt) => new JsonWebToken(jwt).Kid;
}
