using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A signed-in person edits their own profile on <c>/account/profile</c>: what apps then read with the
/// <c>profile</c> scope, under the rules an admin's changes meet.
/// </summary>
public sealed class ProfileTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _userId = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { name = "Ada", locale = "en-GB" });
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheProfile_IsWhatAppsReadNext()
    {
        using var browser = await SignedInAsync();
        var form = await browser.GetStringAsync("/t/acme/account/profile");
        Assert.Contains("value=\"Ada\"", form);
        Assert.Contains("autocomplete=\"given-name\"", form);

        var saved = await SaveAsync(browser, name: "Ada Lovelace", givenName: "Ada", familyName: "Lovelace", locale: "");

        Assert.Contains("Your profile is saved.", saved);
        var user = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}", expected: HttpStatusCode.OK);
        Assert.Equal("Ada Lovelace", user["name"]!.GetValue<string>());
        Assert.Equal("Lovelace", user["familyName"]!.GetValue<string>());
        Assert.Null(user["locale"]);

        using var app = _factory.CreateBrowser();
        var tokens = await new OidcFlow(app, "acme", "web") { Scope = "openid profile" }.SignInAsync("ada@acme.test", Password);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/t/acme/connect/userinfo");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        var claims = JsonDocument.Parse(await (await app.SendAsync(request)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Ada Lovelace", claims.GetProperty("name").GetString());
        Assert.Equal("Lovelace", claims.GetProperty("family_name").GetString());

        var updated = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.updated", expected: HttpStatusCode.OK))["items"]!.AsArray();
        var entry = Assert.Single(updated)!;
        Assert.Equal($"user:{_userId}@acme", entry["actor"]!.GetValue<string>());
        Assert.Equal(["name", "givenName", "familyName", "locale"], entry["details"]!["fields"]!.AsArray().Select(f => f!.GetValue<string>()));
    }

    [Fact]
    public async Task ABadField_IsNamedOnThePage_AndNothingIsSaved()
    {
        using var browser = await SignedInAsync();

        var tooLong = await SaveAsync(browser, name: new string('x', 201));
        var control = await SaveAsync(browser, givenName: "Ada\u0007");
        var locale = await SaveAsync(browser, locale: "not a language");

        Assert.Contains("Full name must be at most 200 characters.", tooLong);
        Assert.Contains("Given name must not hold a control character", control);
        Assert.Contains("Language must be a BCP 47 language tag", locale);
        Assert.Contains("value=\"not a language\"", locale);
        var user = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}", expected: HttpStatusCode.OK);
        Assert.Equal("Ada", user["name"]!.GetValue<string>());
        Assert.Equal("en-GB", user["locale"]!.GetValue<string>());
        Assert.Empty((await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.updated", expected: HttpStatusCode.OK))["items"]!.AsArray());
    }

    [Fact]
    public async Task ThePage_NeedsASignIn()
    {
        using var stranger = _factory.CreateBrowser();
        Assert.Equal("/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fprofile", (await stranger.GetAsync("/t/acme/account/profile")).Headers.Location!.OriginalString);
    }

    private async Task<HttpClient> SignedInAsync()
    {
        var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        return browser;
    }

    private static Task<string> SaveAsync(HttpClient browser, string name = "Ada", string givenName = "", string familyName = "", string locale = "en-GB") =>
        PageForms.PostAsync(browser, "/t/acme/account/profile", new()
        {
            ["Name"] = name,
            ["GivenName"] = givenName,
            ["FamilyName"] = familyName,
            ["Locale"] = locale,
        });
}
