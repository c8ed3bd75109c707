using System.Net;
using System.Net.Http.Headers;
using System.Text;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Diagnostics;

/// <summary>The service under a tenant with a client, a confidential client, a user, and things to delete.</summary>
public sealed class NoServerErrorFixture : IAsyncLifetime
{
    public IdentityServiceFactory Factory { get; } = new();

    public string UserId { get; private set; } = "";

    public string DoomedUserId { get; private set; } = "";

    public string AdminToken { get; private set; } = "";

    public async Task InitializeAsync()
    {
        await Factory.CreateTenantAsync("acme");
        await Factory.CreateTenantAsync("doomed");
        await Factory.CreateWebClientAsync("acme");
        await Factory.CreateWebClientAsync("acme", "doomed");
        await Factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "svc",
            generateSecret = true,
            grantTypes = new[] { "client_credentials" },
        });
        UserId = await Factory.CreateUserAsync("acme", "ada@acme.test", "correct horse battery staple");
        DoomedUserId = await Factory.CreateUserAsync("acme", "doomed@acme.test", "correct horse battery staple");
        AdminToken = await Factory.AdminTokenAsync();
    }

    public Task DisposeAsync()
    {
        Factory.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>
/// Whatever a caller sends (malformed, truncated, huge, wrongly typed or binary bodies, with any or no
/// content type) to any management route or any endpoint of a tenant, the answer is never a 5xx.
/// </summary>
public sealed class NoServerErrorTests(NoServerErrorFixture fixture, ITestOutputHelper output) : IClassFixture<NoServerErrorFixture>
{
    private static readonly string[] ContentTypes =
    [
        "",
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=zz",
        "application/json; charset=utf-32",
        "application/x-www-form-urlencoded; charset=utf-7",
        "application/x-ndjson",
    ];

    private static readonly (string Name, byte[] Bytes)[] Bodies = BuildBodies();

    public static TheoryData<string, string> ManagementRoutes => new()
    {
        { "GET", "/api/v1/tenants" },
        { "POST", "/api/v1/tenants" },
        { "PUT", "/api/v1/tenants" },
        { "GET", "/api/v1/tenants/acme" },
        { "POST", "/api/v1/tenants/acme" },
        { "PATCH", "/api/v1/tenants/acme" },
        { "DELETE", "/api/v1/tenants/doomed" },
        { "PATCH", "/api/v1/tenants/ACME" },
        { "GET", "/api/v1/tenants/acme/clients" },
        { "POST", "/api/v1/tenants/acme/clients" },
        { "GET", "/api/v1/tenants/acme/clients/web" },
        { "POST", "/api/v1/tenants/acme/clients/web" },
        { "PATCH", "/api/v1/tenants/acme/clients/web" },
        { "DELETE", "/api/v1/tenants/acme/clients/doomed" },
        { "POST", "/api/v1/tenants/acme/clients/svc/secret" },
        { "POST", "/api/v1/tenants/acme/clients/web/secret" },
        { "POST", "/api/v1/tenants/acme/clients/nope/secret" },
        { "GET", "/api/v1/tenants/acme/users" },
        { "POST", "/api/v1/tenants/acme/users" },
        { "GET", "/api/v1/tenants/acme/users/{user}" },
        { "POST", "/api/v1/tenants/acme/users/{user}" },
        { "PATCH", "/api/v1/tenants/acme/users/{user}" },
        { "DELETE", "/api/v1/tenants/acme/users/{doomed}" },
        { "PATCH", "/api/v1/tenants/acme/users/not-a-guid" },
        { "GET", "/api/v1/tenants/acme/users?limit=-1&cursor=%FF%FE" },
        { "GET", "/api/v1/tenants/acme/users?cursor=AAAA&email=%00" },
        { "GET", "/api/v1/tenants/acme/clients?cursor=" + "%F0%9F%98%80" },
        { "GET", "/api/v1/tenants/acme/policy" },
        { "PUT", "/api/v1/tenants/acme/policy" },
        { "PATCH", "/api/v1/tenants/acme/policy" },
        { "GET", "/api/v1/tenants/acme/ip-blocks?limit=0&cursor=%00" },
        { "DELETE", "/api/v1/tenants/acme/ip-blocks/not-an-ip" },
        { "POST", "/api/v1/tenants/acme/users/{user}/unlock" },
        { "POST", "/api/v1/tenants/acme/users/not-a-guid/unlock" },
        { "DELETE", "/api/v1/tenants/acme/users/{user}/mfa" },
        { "DELETE", "/api/v1/tenants/acme/users/not-a-guid/mfa" },
        { "GET", "/api/v1/tenants/acme/audit-events" },
        { "POST", "/api/v1/tenants/acme/audit-events" },
        { "GET", "/api/v1/tenants/acme/audit-events?from=9999-12-31T23:59:59-14:00&to=0001-01-01T00:00:00%2B14:00" },
        { "GET", "/api/v1/tenants/acme/audit-events?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5&type=%25&userId=%00&ip=fe80::1%25eth0&outcome=" },
        { "GET", "/api/v1/tenants/acme/audit-events/export?format=csv&from=2026-02-30T00:00:00Z" },
        { "GET", "/api/v1/tenants/acme/audit-events/export?format=ndjson&type=signin.*&limit=0" },
        { "GET", "/api/v1/tenants/acme/webhooks?limit=1&cursor=%FF" },
        { "POST", "/api/v1/tenants/acme/webhooks" },
        { "DELETE", "/api/v1/tenants/acme/webhooks/not-a-guid" },
        { "DELETE", "/api/v1/tenants/acme/webhooks/00000000-0000-0000-0000-000000000000" },
        { "POST", "/api/v1/tenants/acme/users/import" },
        { "POST", "/api/v1/tenants/acme/users/import?dryRun=%FF" },
        { "GET", "/api/v1/tenants/acme/webhooks/not-a-guid/deliveries?status=lost&cursor=%FF" },
        { "GET", "/api/v1/tenants/acme/webhooks/00000000-0000-0000-0000-000000000000/deliveries?cursor=LTE=" },
        { "POST", "/api/v1/tenants/acme/webhooks/00000000-0000-0000-0000-000000000000/deliveries/99999999999999999999/retry" },
        { "POST", "/api/v1/tenants/acme/webhooks/not-a-guid/deliveries/-1/retry" },
        { "POST", "/api/v1/tenants/acme/export?includePasswordHashes=%00" },
        { "GET", "/api/v1/tenants/acme/users/{user}/apps" },
        { "GET", "/api/v1/tenants/acme/users/not-a-guid/apps" },
        { "DELETE", "/api/v1/tenants/acme/users/{user}/apps/%FF%FE" },
        { "DELETE", "/api/v1/tenants/acme/users/{user}/apps/web" },
        { "POST", "/api/v1/tenants/acme/users/{doomed}/signout" },
        { "POST", "/api/v1/tenants/acme/users/not-a-guid/signout" },
    };

    public static TheoryData<string, string> OidcRoutes => new()
    {
        { "GET", "/t/acme/connect/authorize" },
        { "POST", "/t/acme/connect/authorize" },
        { "GET", "/t/acme/connect/authorize?client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid&code_challenge=x&code_challenge_method=S256&prompt=none%00&max_age=-5" },
        { "GET", "/t/acme/connect/authorize?client_id=web&client_id=web&redirect_uri=%ZZ&request=eyJ&request_uri=urn:x" },
        { "POST", "/t/acme/connect/token" },
        { "GET", "/t/acme/connect/token" },
        { "GET", "/t/acme/connect/userinfo" },
        { "POST", "/t/acme/connect/userinfo" },
        { "POST", "/t/acme/connect/introspect" },
        { "POST", "/t/acme/connect/revoke" },
        { "GET", "/t/acme/connect/endsession" },
        { "POST", "/t/acme/connect/endsession" },
        { "GET", "/t/acme/connect/endsession?id_token_hint=abc.def.ghi&post_logout_redirect_uri=javascript:x&state=%00" },
        { "GET", "/t/acme/.well-known/openid-configuration" },
        { "POST", "/t/acme/.well-known/openid-configuration" },
        { "GET", "/t/acme/.well-known/jwks" },
        { "GET", "/t/acme/login" },
        { "POST", "/t/acme/login" },
        { "POST", "/t/acme/login?handler=passkey" },
        { "GET", "/t/acme/login?ReturnUrl=%2F%2Fevil.example&login_hint=%00" },
        { "GET", "/t/acme/mfa" },
        { "POST", "/t/acme/mfa" },
        { "POST", "/t/acme/mfa?handler=send" },
        { "GET", "/t/acme/mfa?ReturnUrl=%2F%2Fevil.example%00" },
        { "GET", "/t/acme/account/security" },
        { "POST", "/t/acme/account/security?handler=enroll" },
        { "POST", "/t/acme/account/security?handler=ask" },
        { "POST", "/t/acme/account/security?handler=recovery" },
        { "POST", "/t/acme/account/security?handler=addpasskey" },
        { "POST", "/t/acme/account/security?handler=removepasskey" },
        { "GET", "/t/acme/account/password" },
        { "GET", "/t/acme/account/delete" },
        { "GET", "/t/acme/account/profile" },
        { "POST", "/t/acme/account/profile" },
        { "POST", "/t/acme/account/delete" },
        { "GET", "/t/acme/account/apps" },
        { "GET", "/t/acme/account/activity" },
        { "GET", "/t/acme/terms?ReturnUrl=%2F%2Fevil.example%00" },
        { "POST", "/t/acme/terms" },
        { "POST", "/t/acme/account/activity" },
        { "GET", "/t/acme/account/email" },
        { "POST", "/t/acme/account/email" },
        { "GET", "/t/acme/account/email/confirm?token=%00" },
        { "POST", "/t/acme/account/email/confirm" },
        { "POST", "/t/acme/account/apps?handler=revoke" },
        { "POST", "/t/acme/account/security?handler=verifyemail" },
        { "POST", "/t/acme/account/security?handler=signoutothers" },
        { "GET", "/t/acme/verify-email?token=CfDJ8%00" },
        { "POST", "/t/acme/verify-email" },
        { "POST", "/t/acme/account/password" },
        { "POST", "/t/acme/account/password?handler=strength" },
        { "GET", "/t/acme/signup" },
        { "POST", "/t/acme/signup" },
        { "POST", "/t/acme/signup?handler=strength" },
        { "GET", "/t/acme/signup?ReturnUrl=%2F%2Fevil.example%00" },
        { "GET", "/t/acme/signup/confirm" },
        { "GET", "/t/acme/signup/confirm?token=%00" },
        { "POST", "/t/acme/signup/confirm" },
        { "GET", "/t/acme/connect/authorize?client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid&code_challenge=x&code_challenge_method=S256&prompt=create" },
        { "GET", "/t/acme/consent" },
        { "POST", "/t/acme/consent" },
        { "GET", "/t/acme/consent?ReturnUrl=%2Ft%2Facme%2Fconnect%2Fauthorize%3Fclient_id%3Dweb%26scope%3Dopenid" },
        { "GET", "/t/acme/consent?ReturnUrl=http%3A%2F%2F%5B%3A%3A" },
        { "GET", "/t/acme/logout" },
        { "POST", "/t/acme/logout" },
        { "GET", "/t/acme/device" },
        { "GET", "/t/acme/device?user_code=%00" },
        { "GET", "/t/acme/device?user_code=1234-5678-9012" },
        { "POST", "/t/acme/device" },
        { "POST", "/t/acme/device?user_code=x" },
        { "POST", "/t/acme/connect/device" },
        { "GET", "/t/acme/connect/device" },
        { "GET", "/t/Acme/connect/token" },
        { "POST", "/connect/token" },
    };

    [Theory]
    [MemberData(nameof(ManagementRoutes))]
    public async Task ManagementRoute_AnyBodyAndContentType_NeverAnswers5xx(string method, string route)
    {
        // Arrange
        var path = route.Replace("{user}", fixture.UserId).Replace("{doomed}", fixture.DoomedUserId);

        // Act
        var failures = await SendEverythingAsync(method, path, [$"Bearer {fixture.AdminToken}", null, "Bearer a.b.c.d.e", "Bearer eHg.e30.AAAA", "Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOjEyM30."]);

        // Assert
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Theory]
    [MemberData(nameof(OidcRoutes))]
    public async Task OidcEndpoint_AnyBodyAndContentType_NeverAnswers5xx(string method, string path)
    {
        // Act
        var failures = await SendEverythingAsync(method, path, [null, "Basic !!notbase64", "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("svc:wrong")), "Bearer abc.def.ghi"]);

        // Assert
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Theory]
    [InlineData("/t/acme/login")]
    public async Task SignInPage_PostedWithItsAntiforgeryTokenButABodyOfAnyOtherKind_NeverAnswers5xx(string path)
    {
        fixture.Factory.Output = output;
        using var browser = fixture.Factory.CreateBrowser();
        using var page = await browser.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var token = OidcFlow.Hidden(await page.Content.ReadAsStringAsync(), "__RequestVerificationToken");
        var failures = new List<string>();
        foreach (var (name, bytes) in Bodies)
        {
            foreach (var contentType in ContentTypes.Where(t => !t.StartsWith("application/x-www-form-urlencoded", StringComparison.Ordinal)))
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(bytes) };
                request.Headers.Add("RequestVerificationToken", token);
                if (contentType.Length > 0)
                {
                    request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
                }

                using var response = await browser.SendAsync(request);
                if ((int)response.StatusCode >= 500)
                {
                    failures.Add($"POST {path} body={name} type={contentType}: {(int)response.StatusCode}");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    private async Task<List<string>> SendEverythingAsync(string method, string path, string?[] authorizations)
    {
        fixture.Factory.Output = output;
        var failures = new List<string>();
        using var client = fixture.Factory.CreateApi();
        foreach (var authorization in authorizations)
        {
            foreach (var (name, bytes) in Bodies)
            {
                foreach (var contentType in ContentTypes)
                {
                    // The huge body once per content type with the first authorization only: it proves the limit, not the auth.
                    if (name == "huge" && authorization != authorizations[0])
                    {
                        continue;
                    }

                    using var request = new HttpRequestMessage(new HttpMethod(method), path);
                    if (authorization is not null)
                    {
                        request.Headers.TryAddWithoutValidation("Authorization", authorization);
                    }

                    if (name != "none")
                    {
                        request.Content = new ByteArrayContent(bytes);
                        if (contentType.Length > 0)
                        {
                            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
                        }
                    }

                    var what = $"{method} {path} body={name} type={(contentType.Length == 0 ? "(none)" : contentType)} auth={authorization?.Split(' ')[0] ?? "(none)"}";
                    try
                    {
                        using var response = await client.SendAsync(request);
                        if ((int)response.StatusCode >= 500)
                        {
                            failures.Add($"{what}: {(int)response.StatusCode} {Truncate(await response.Content.ReadAsStringAsync())}");
                        }
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        failures.Add($"{what}: exception {e.GetType().Name}: {e.Message}");
                    }

                    if (name == "none")
                    {
                        break;
                    }
                }
            }
        }

        output.WriteLine($"{failures.Count} failures");
        return failures;
    }

    private static string Truncate(string text) => text.Length > 300 ? text[..300] + "..." : text;

    private static (string, byte[])[] BuildBodies()
    {
        var random = new Random(20261123);
        var binary = new byte[4096];
        random.NextBytes(binary);
        binary[0] = 0xFF;
        binary[1] = 0xFE;
        var deep = new string('[', 5000) + new string(']', 5000);
        var utf8 = (string s) => Encoding.UTF8.GetBytes(s);
        return
        [
            ("none", []),
            ("empty", []),
            ("malformed", utf8("{\"id\": \"x\",, }")),
            ("truncated", utf8("{\"id\": \"trunc")),
            ("array", utf8("[1, 2, 3]")),
            ("null", utf8("null")),
            ("wrong-types", utf8("{\"id\": 5, \"displayName\": true, \"suspended\": \"yes\", \"email\": [], \"password\": {}, \"clientId\": 1.5, \"redirectUris\": \"x\", \"grantTypes\": {}, \"scopes\": [1], \"overlapHours\": 1e400, \"settings\": []}")),
            ("policy-like", utf8("{\"lockout\": {\"maxFailedAttempts\": \"x\", \"maxFailedAttempts\": 2}, \"countries\": null, \"ipRules\": {\"allow\": [\"\\ud800\"]}, \"\\udfff\": []}")),
            ("nulls", utf8("{\"id\": null, \"displayName\": null, \"email\": null, \"password\": null, \"clientId\": null, \"redirectUris\": [null], \"grantTypes\": [null], \"scopes\": [null], \"roles\": [null], \"settings\": {\"apiResources\": [null]}}")),
            ("lone-surrogate", utf8("{\"email\": \"\\ud800@x.test\", \"displayName\": \"\\udfff\", \"clientId\": \"\\u0000\"}")),
            ("webhook-like", utf8("{\"url\": \"http://127.0.0.1:9/\\u0000\", \"events\": [\"*\", null, 5, \"user.*\"]}")),
            ("webhook", utf8("{\"url\": \"http://[::1]:9/x?y=%00\", \"events\": [\"*\"]}")),
            ("deep", utf8(deep)),
            ("form", utf8("grant_type=authorization_code&code=%ZZ&client_id=web&client_id=other&redirect_uri=%00&code_verifier=&token=" + new string('a', 20_000) + "&Email=%FF&Password=&__RequestVerificationToken=x&decision=allow")),
            ("form-refresh", utf8("grant_type=refresh_token&refresh_token=abc.def.ghi.jkl.mno&client_id=svc&client_secret=x&scope=manage%20openid")),
            ("form-cc", utf8("grant_type=client_credentials&client_id=svc&client_secret=&resource=not%20a%20uri&scope=" + new string('s', 5000))),
            ("binary", binary),
            ("huge", utf8("{\"displayName\": \"" + new string('x', 1024 * 1024) + "\"}")),
        ];
    }
}
