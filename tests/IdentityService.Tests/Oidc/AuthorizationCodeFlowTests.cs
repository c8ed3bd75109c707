using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace IdentityService.Tests.Oidc;

public sealed class AuthorizationCodeFlowTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() ;

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { name = "Ada Lovelace", givenName = "Ada", familyName = "Lovelace", locale = "en-GB" });
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task CodeFlow_WithPkce_IssuesIdTokenSignedWithTheTenantsPublishedRs256Key()
    {
        using var browser = _factory.CreateBrowser();
        var tokens = await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        var idToken = tokens.GetProperty("id_token").GetString()!;
        var jwks = new JsonWebKeySet(await browser.GetStringAsync("/t/acme/.well-known/jwks"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            ValidIssuer = "http://localhost/t/acme",
            ValidAudience = "web",
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidateLifetime = false,
        });

        Assert.True(result.IsValid, result.Exception?.ToString());
        var jwt = (JsonWebToken)result.SecurityToken;
        Assert.Equal("RS256", jwt.Alg);
        Assert.Equal("Ada Lovelace", jwt.GetClaim("name").Value);
        Assert.Equal("ada@acme.test", jwt.GetClaim("email").Value);
        Assert.True(jwt.TryGetClaim("auth_time", out _));
        Assert.True(tokens.TryGetProperty("refresh_token", out _));
    }

    [Fact]
    public async Task AccessToken_IsAPlainEs256JwtValidatedByTheJwksAlone()
    {
        using var browser = _factory.CreateBrowser();
        var tokens = await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        var jwks = new JsonWebKeySet(await browser.GetStringAsync("/t/acme/.well-known/jwks"));

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(accessToken, new TokenValidationParameters
        {
            ValidIssuer = "http://localhost/t/acme",
            ValidateAudience = false,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidateLifetime = false,
        });

        Assert.True(result.IsValid, result.Exception?.ToString());
        Assert.Equal("ES256", ((JsonWebToken)result.SecurityToken).Alg);
        Assert.Equal("at+jwt", ((JsonWebToken)result.SecurityToken).Typ);
    }

    [Fact]
    public async Task AccessToken_ResignedWithHmacOverAPublishedKey_IsRefused()
    {
        // Codes and refresh tokens are signed with a secret HMAC key, so the service verifies HS256: a token
        // signed with a published key's bytes as the HMAC secret (the classic algorithm confusion) must not pass.
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var accessToken = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("access_token").GetString()!;
        using var jwks = JsonDocument.Parse(await browser.GetStringAsync("/t/acme/.well-known/jwks"));
        var published = jwks.RootElement.GetProperty("keys").EnumerateArray().First(k => k.GetProperty("alg").GetString() == "ES256");
        var kid = published.GetProperty("kid").GetString()!;
        var secret = Base64UrlEncoder.DecodeBytes(published.GetProperty("x").GetString()!)
            .Concat(Base64UrlEncoder.DecodeBytes(published.GetProperty("y").GetString()!)).ToArray();

        var parts = accessToken.Split('.');
        var header = Base64UrlEncoder.Encode($$"""{"alg":"HS256","kid":"{{kid}}","typ":"at+jwt"}""");
        var signature = Base64UrlEncoder.Encode(System.Security.Cryptography.HMACSHA256.HashData(secret, System.Text.Encoding.ASCII.GetBytes(header + "." + parts[1])));
        var forged = header + "." + parts[1] + "." + signature;

        Assert.Equal(HttpStatusCode.OK, await flow.UserInfoStatusAsync(accessToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(forged));
    }

    [Fact]
    public async Task UserInfo_ReturnsTheProfileAllowedByTheScopes()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web") { Scope = "openid email" };
        var tokens = await flow.SignInAsync("ada@acme.test", Password);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/t/acme/connect/userinfo");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        var response = await browser.SendAsync(request);
        var claims = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ada@acme.test", claims.GetProperty("email").GetString());
        Assert.True(claims.GetProperty("email_verified").GetBoolean());
        Assert.False(claims.TryGetProperty("name", out _), "name needs the profile scope");
    }

    [Fact]
    public async Task UserInfo_RefusesAnAccessTokenInTheUrl_ButTakesItFromAPostBody()
    {
        using var browser = _factory.CreateBrowser();
        var token = (await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password)).GetProperty("access_token").GetString()!;

        var inUrl = await browser.GetAsync("/t/acme/connect/userinfo?access_token=" + Uri.EscapeDataString(token));
        var inBody = await browser.PostAsync("/t/acme/connect/userinfo", new FormUrlEncodedContent(new Dictionary<string, string> { ["access_token"] = token }));

        Assert.Equal(HttpStatusCode.BadRequest, inUrl.StatusCode);
        Assert.Contains("invalid_request", inUrl.Headers.WwwAuthenticate.ToString() + await inUrl.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, inBody.StatusCode);
    }

    [Fact]
    public async Task ANewPasswordSetByTheAdmin_EndsTheGrantsMadeWithTheOldOne()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        var users = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/users?email=ada%40acme.test", expected: HttpStatusCode.OK);
        var id = users["items"]![0]!["id"]!.GetValue<string>();

        await _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{id}", new { password = "an entirely new passphrase 7" }, HttpStatusCode.OK);

        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(tokens.GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task RefreshToken_HoldsNoProfile_ButTheRefreshedIdTokenHasTheUsersCurrentOne()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var refreshToken = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;

        // Opened with the tenant's own keys: the subject and OpenIddict's claims, no name, no email.
        var directory = _factory.Services.GetRequiredService<IdentityService.Tenancy.TenantDirectory>();
        var state = await _factory.Services.GetRequiredService<IdentityService.Oidc.TenantOidcStateCache>()
            .GetAsync((await directory.FindAsync("acme", CancellationToken.None))!, CancellationToken.None);
        var (inner, forged) = IdentityService.Oidc.SealedRefreshTokens.Unprotect(refreshToken, state.Keys.RefreshUnsealing, "acme");
        Assert.False(forged);
        Assert.NotNull(inner);
        Assert.False(string.IsNullOrEmpty(inner.FindFirst("sub")?.Value));
        Assert.Contains(inner.Claims, c => c.Type.StartsWith("oi_", StringComparison.Ordinal));
        Assert.DoesNotContain(inner.Claims, c => c.Type is "email" or "name" or "given_name" or "family_name" or "locale");
        Assert.DoesNotContain(inner.Claims, c => c.Value.Contains("ada@acme.test", StringComparison.Ordinal));

        var refreshed = await flow.RefreshAsync(refreshToken);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var body = JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync()).RootElement;
        var idToken = new JsonWebToken(body.GetProperty("id_token").GetString());
        Assert.Equal("ada@acme.test", idToken.GetClaim("email").Value);
        Assert.Equal("Ada Lovelace", idToken.GetClaim("name").Value);

        // The rotated refresh token holds none either, though the principal it came from had the profile; the access
        // token issued beside it still has what its destinations give it (the subject), and the user's email went
        // to the ID token only.
        var (next, nextForged) = IdentityService.Oidc.SealedRefreshTokens.Unprotect(body.GetProperty("refresh_token").GetString()!, state.Keys.RefreshUnsealing, "acme");
        Assert.False(nextForged);
        Assert.NotNull(next);
        Assert.Equal(inner.FindFirst("sub")?.Value, next.FindFirst("sub")?.Value);
        Assert.Contains(next.Claims, c => c.Type.StartsWith("oi_", StringComparison.Ordinal));
        Assert.DoesNotContain(next.Claims, c => c.Type is "email" or "name" or "given_name" or "family_name" or "locale");
        Assert.DoesNotContain(next.Claims, c => c.Value.Contains("ada@acme.test", StringComparison.Ordinal));
        var accessToken = new JsonWebToken(body.GetProperty("access_token").GetString());
        Assert.Equal(inner.FindFirst("sub")?.Value, accessToken.Subject);
        Assert.False(accessToken.TryGetClaim("email", out _));
    }

    [Fact]
    public async Task RefreshToken_RotatesAndItsReuseRevokesTheWholeFamily()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var first = (await flow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;

        var rotated = await flow.RefreshAsync(first);
        Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        var second = JsonDocument.Parse(await rotated.Content.ReadAsStringAsync()).RootElement.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(first, second);

        var reuse = await flow.RefreshAsync(first);
        Assert.Equal(HttpStatusCode.BadRequest, reuse.StatusCode);
        Assert.Contains("invalid_grant", await reuse.Content.ReadAsStringAsync());

        // The reuse revoked the family: the newest refresh token of the same sign-in no longer works.
        var afterReuse = await flow.RefreshAsync(second);
        Assert.Equal(HttpStatusCode.BadRequest, afterReuse.StatusCode);
    }

    [Fact]
    public async Task AccessTokens_HaveNoTokenRow_ButDieWithTheirFamily()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        var access = tokens.GetProperty("access_token").GetString()!;
        var first = tokens.GetProperty("refresh_token").GetString()!;
        var rotated = JsonDocument.Parse(await (await flow.RefreshAsync(first)).Content.ReadAsStringAsync()).RootElement;
        var rotatedAccess = rotated.GetProperty("access_token").GetString()!;

        // Only the code has a row: access and ID tokens are written nowhere, and refresh tokens are counted by
        // their sign-in's authorization (TokenFamilyTests).
        Assert.Equal(["urn:openiddict:params:oauth:token-type:authorization_code"], await TokenRowTypesAsync());
        Assert.Equal(HttpStatusCode.OK, await flow.UserInfoStatusAsync(access));
        Assert.Equal(HttpStatusCode.OK, await flow.UserInfoStatusAsync(rotatedAccess));

        // Reusing the first refresh token revokes the family: its access tokens stop working at once.
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(first)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(access));
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(rotatedAccess));
    }

    [Fact]
    public async Task RevokedAccessToken_OfAPerson_IsRefusedAtOnce_WhileItsRefreshTokenStillWorks()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);
        var access = tokens.GetProperty("access_token").GetString()!;

        var revoked = await browser.PostAsync("/t/acme/connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = access,
            ["token_type_hint"] = "access_token",
            ["client_id"] = "web",
        }));

        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(access));
        Assert.Equal(HttpStatusCode.OK, (await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
    }

    [Fact]
    public async Task RefreshTokenReuse_OnOneDevice_DoesNotSignOutTheSameUserOnAnother()
    {
        using var phone = _factory.CreateBrowser();
        using var laptop = _factory.CreateBrowser();
        var phoneFlow = new OidcFlow(phone, "acme", "web");
        var laptopFlow = new OidcFlow(laptop, "acme", "web");
        var phoneToken = (await phoneFlow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;
        var laptopToken = (await laptopFlow.SignInAsync("ada@acme.test", Password)).GetProperty("refresh_token").GetString()!;

        Assert.Equal(HttpStatusCode.OK, (await phoneFlow.RefreshAsync(phoneToken)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await phoneFlow.RefreshAsync(phoneToken)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await laptopFlow.RefreshAsync(laptopToken)).StatusCode);
    }

    [Fact]
    public async Task Code_IsSingleUse_AndItsReplayRevokesWhatItIssued()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var code = await flow.GetCodeAsync("ada@acme.test", Password);
        var first = await flow.RedeemAsync(code);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var refresh = JsonDocument.Parse(await first.Content.ReadAsStringAsync()).RootElement.GetProperty("refresh_token").GetString()!;

        var replay = await flow.RedeemAsync(code);
        Assert.Equal(HttpStatusCode.BadRequest, replay.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(refresh)).StatusCode);
    }

    [Fact]
    public async Task Code_WithAWrongVerifier_IsRefused()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var code = await flow.GetCodeAsync("ada@acme.test", Password);

        var response = await flow.RedeemAsync(code, verifier: OidcFlow.Base64Url(new byte[32]));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("invalid_grant", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("code_challenge_method", "plain")]
    [InlineData("redirect_uri", "https://evil.example/cb")]
    public async Task Authorize_WithAPlainChallengeOrAnUnregisteredRedirectUri_IsRefusedWithoutRedirectingThere(string parameter, string value)
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        flow.Extra[parameter] = value;

        var response = await browser.GetAsync(flow.AuthorizeUrl());

        if (response.StatusCode == HttpStatusCode.Redirect)
        {
            Assert.DoesNotContain("evil.example", response.Headers.Location!.ToString());
            Assert.Contains("error=", response.Headers.Location!.ToString());
        }
        else
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM0")]
    [InlineData("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c")]
    [InlineData("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+c=")]
    public async Task Authorize_WithACodeChallengeNoS256VerifierCanMatch_IsRefused(string challenge)
    {
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        var flow = new OidcFlow(browser, "acme", "web");
        flow.Extra["code_challenge"] = challenge;

        var response = await browser.GetAsync(flow.AuthorizeUrl());

        // As a request without PKCE: on the error page, before the client's redirect URI is checked; no code either way.
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("code_challenge", WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task Authorize_WithoutPkce_IsRefused()
    {
        using var browser = _factory.CreateBrowser();
        var url = "/t/acme/connect/authorize?client_id=web&response_type=code&scope=openid&redirect_uri=" + Uri.EscapeDataString(OidcFlow.RedirectUri);

        var response = await browser.GetAsync(url);

        // OpenIddict shows this one on the error page, not at the client: nothing is issued either way.
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("code_challenge", WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task SignInPage_UnknownEmailAndWrongPassword_LookTheSame()
    {
        using var first = _factory.CreateBrowser();
        using var second = _factory.CreateBrowser();

        var unknown = await Assert.ThrowsAsync<SignInRefusedException>(() => new OidcFlow(first, "acme", "web").GetCodeAsync("nobody@acme.test", Password));
        var wrong = await Assert.ThrowsAsync<SignInRefusedException>(() => new OidcFlow(second, "acme", "web").GetCodeAsync("ada@acme.test", "wrong password here"));

        Assert.Contains("Email and/or password invalid.", unknown.Page);
        Assert.Equal(Normalize(unknown.Page), Normalize(wrong.Page));

        static string Normalize(string html) => System.Text.RegularExpressions.Regex.Replace(
            html, "(name=\"(?:__RequestVerificationToken|ReturnUrl)\"[^>]*value=\")[^\"]*|(value=\")[^\"]*@acme.test", "$1$2");
    }

    [Fact]
    public async Task SecondAuthorize_WithAnSsoCookie_SkipsTheSignInPage_ButPromptLoginAsksAgain()
    {
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        var silent = new OidcFlow(browser, "acme", "web");
        silent.Extra["prompt"] = "none";
        var again = await browser.GetAsync(silent.AuthorizeUrl());
        Assert.Contains("code=", OidcFlow.Location(again).Query);

        var forced = new OidcFlow(browser, "acme", "web");
        forced.Extra["prompt"] = "login";
        var login = await browser.GetAsync(forced.AuthorizeUrl());
        Assert.EndsWith("/t/acme/login", OidcFlow.Location(login).AbsolutePath);
    }

    [Fact]
    public async Task PromptNone_WithoutASession_AnswersLoginRequired()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        flow.Extra["prompt"] = "none";

        var response = await browser.GetAsync(flow.AuthorizeUrl());

        Assert.Contains("error=login_required", OidcFlow.Location(response).Query);
    }

    [Fact]
    public async Task PromptNone_WithAnIdTokenHintOfAnotherPerson_AnswersLoginRequired_NeverTheirCode()
    {
        await _factory.CreateUserAsync("acme", "bob@acme.test", Password);
        using var bobs = _factory.CreateBrowser();
        var bob = (await new OidcFlow(bobs, "acme", "web").SignInAsync("bob@acme.test", Password)).GetProperty("id_token").GetString()!;
        using var browser = _factory.CreateBrowser();
        var ada = (await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password)).GetProperty("id_token").GetString()!;

        // A silent renewal of Bob's sign-in in the browser Ada is signed in to: not her code.
        Assert.Contains("error=login_required", OidcFlow.Location(await browser.GetAsync(Silent(bob))).Query);
        Assert.Contains("error=login_required", OidcFlow.Location(await browser.GetAsync(Silent("not.a.token"))).Query);
        Assert.Contains("code=", OidcFlow.Location(await browser.GetAsync(Silent(ada))).Query);
        var pushed = new OidcFlow(browser, "acme", "web") { Pushed = true };
        pushed.Extra["prompt"] = "none";
        pushed.Extra["id_token_hint"] = ada;
        Assert.Contains("code=", OidcFlow.Location(await browser.GetAsync(await pushed.StartAsync())).Query);

        // Without prompt=none the person is asked to sign in, and the way back no longer names Bob.
        var flow = new OidcFlow(browser, "acme", "web");
        flow.Extra["id_token_hint"] = bob;
        var login = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        Assert.EndsWith("/t/acme/login", login.AbsolutePath);
        Assert.DoesNotContain("id_token_hint", Uri.UnescapeDataString(login.Query));

        string Silent(string hint)
        {
            var silent = new OidcFlow(browser, "acme", "web");
            silent.Extra["prompt"] = "none";
            silent.Extra["id_token_hint"] = hint;
            return silent.AuthorizeUrl();
        }
    }

    [Theory]
    [InlineData("99999999999999")]
    [InlineData("-99999999999999")]
    [InlineData("9223372036854775807")]
    public async Task AnyMaxAge_IsAnsweredAsOAuthSays_NeverA500(string maxAge)
    {
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        var flow = new OidcFlow(browser, "acme", "web");
        flow.Extra["max_age"] = maxAge;

        var response = await browser.GetAsync(flow.AuthorizeUrl());

        // A huge one is met by the session; a negative one asks to sign in again.
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = OidcFlow.Location(response);
        Assert.True(location.Query.Contains("code=") || location.AbsolutePath.EndsWith("/t/acme/login", StringComparison.Ordinal), location.ToString());
    }

    [Fact]
    public async Task ThirdPartyClient_AsksConsentOnce_ThenRemembersIt()
    {
        await _factory.CreateWebClientAsync("acme", clientId: "partner", firstParty: false);
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        var flow = new OidcFlow(browser, "acme", "partner") { Scope = "openid email" };
        var consent = OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl()));
        Assert.EndsWith("/t/acme/consent", consent.AbsolutePath);
        var page = await (await browser.GetAsync(consent.PathAndQuery)).Content.ReadAsStringAsync();
        Assert.Contains("partner app", page);
        var allowed = await OidcFlow.AnswerConsentAsync(browser, consent, page);
        var code = OidcFlow.Location(await browser.GetAsync(allowed.PathAndQuery));
        Assert.Contains("code=", code.Query);

        var second = new OidcFlow(browser, "acme", "partner") { Scope = "openid email" };
        Assert.Contains("code=", OidcFlow.Location(await browser.GetAsync(second.AuthorizeUrl())).Query);
    }

    [Fact]
    public async Task Consent_ShowsAndRemembersOnlyTheScopesTheClientMayAskFor()
    {
        await _factory.CreateWebClientAsync("acme", clientId: "partner", firstParty: false, scopes: ["openid", "email"]);
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);
        var returnUrl = "/t/acme/connect/authorize?client_id=partner&scope=" + Uri.EscapeDataString("openid email manage phantom");
        var consent = "/t/acme/consent?ReturnUrl=" + Uri.EscapeDataString(returnUrl);

        var page = await (await browser.GetAsync(consent)).Content.ReadAsStringAsync();
        await browser.PostAsync(consent, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["ReturnUrl"] = returnUrl,
            ["decision"] = "allow",
            ["__RequestVerificationToken"] = OidcFlow.Hidden(page, "__RequestVerificationToken"),
        }));

        Assert.Contains("<li>email</li>", page);
        Assert.DoesNotContain("<li>manage</li>", page);
        Assert.DoesNotContain("<li>phantom</li>", page);
        using var scope = await _factory.TenantScopeAsync("acme");
        var authorizations = scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictAuthorizationManager>();
        var kept = new List<string>();
        await foreach (var authorization in authorizations.ListAsync())
        {
            if (await authorizations.GetTypeAsync(authorization) == OpenIddict.Abstractions.OpenIddictConstants.AuthorizationTypes.Permanent)
            {
                kept.AddRange(await authorizations.GetScopesAsync(authorization));
            }
        }

        Assert.Equal(["email", "openid"], kept.Order());
    }

    [Fact]
    public async Task EndSession_WithoutIdTokenHint_AsksConfirmation_ThenClearsTheSessionAndRedirectsOnlyToARegisteredUri()
    {
        using var browser = _factory.CreateBrowser();
        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        // A bare GET (an image tag on any page) does not sign the person out: it asks first.
        var bare = await browser.GetAsync("/t/acme/connect/endsession");
        Assert.EndsWith("/t/acme/logout", OidcFlow.Location(bare).AbsolutePath);
        var stillSignedIn = new OidcFlow(browser, "acme", "web");
        stillSignedIn.Extra["prompt"] = "none";
        Assert.Contains("code=", OidcFlow.Location(await browser.GetAsync(stillSignedIn.AuthorizeUrl())).Query);

        var confirm = OidcFlow.Location(await browser.GetAsync("/t/acme/connect/endsession?client_id=web&post_logout_redirect_uri=" + Uri.EscapeDataString("https://app.example/")));
        var page = await (await browser.GetAsync(confirm.PathAndQuery)).Content.ReadAsStringAsync();
        var posted = await browser.PostAsync(confirm.AbsolutePath, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["ReturnUrl"] = WebUtility.HtmlDecode(OidcFlow.Hidden(page, "ReturnUrl")),
            ["__RequestVerificationToken"] = OidcFlow.Hidden(page, "__RequestVerificationToken"),
        }));
        var response = await browser.GetAsync(OidcFlow.Location(posted).PathAndQuery);
        Assert.Equal("https://app.example/", OidcFlow.Location(response).ToString());

        var flow = new OidcFlow(browser, "acme", "web");
        flow.Extra["prompt"] = "none";
        Assert.Contains("error=login_required", OidcFlow.Location(await browser.GetAsync(flow.AuthorizeUrl())).Query);
    }

    [Fact]
    public async Task EndSession_WithAnUnregisteredPostLogoutUri_NeverRedirectsThere()
    {
        using var browser = _factory.CreateBrowser();

        await new OidcFlow(browser, "acme", "web").SignInAsync("ada@acme.test", Password);

        var response = await browser.GetAsync("/t/acme/connect/endsession?client_id=web&post_logout_redirect_uri=" + Uri.EscapeDataString("https://evil.example/"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
    }

    private async Task<string[]> TokenRowTypesAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
        var types = await db.Tokens.Select(t => t.Type!).ToListAsync();
        return [.. types.Order(StringComparer.Ordinal)];
    }
}
