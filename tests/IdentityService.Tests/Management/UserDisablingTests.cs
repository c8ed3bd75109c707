using System.Net;
using System.Text.Json.Nodes;
using IdentityService.SignIn.Pages;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Management;

/// <summary>
/// An admin disables an account without deleting it (<c>"disabled": true</c>): every way in ends at once (sessions,
/// refresh and access tokens, reset links), it signs in nowhere, and only whoever knows its password learns why.
/// Enabled again, it signs in as before. Signing a user out (<c>POST .../signout</c>) ends its sessions and tokens alone.
/// </summary>
public sealed class UserDisablingTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private readonly SmtpCapture _smtp = SmtpCapture.Start();
    private IdentityServiceFactory _factory = null!;
    private string _userId = "";

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        _factory.SendMailTo(_smtp);
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password, new { emailVerified = true });
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task DisablingAnAccount_EndsItsSessionsAndTokens_AndItSignsInNowhere_UntilEnabled()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);

        var disabled = await PatchAsync(new { disabled = true });

        Assert.True(disabled["disabled"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(tokens.GetProperty("access_token").GetString()!));
        var silent = new OidcFlow(browser, "acme", "web");
        silent.Extra["prompt"] = "none";
        Assert.Contains("error=login_required", OidcFlow.Location(await browser.GetAsync(silent.AuthorizeUrl())).Query);

        // The right password is told why; a wrong one gets the one refusal, as for any account.
        var right = await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password);
        Assert.False(right.SignedIn);
        Assert.Contains(LoginModel.DisabledMessage, right.Html);
        var wrong = await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", "not the password");
        Assert.True(wrong.Refused);
        Assert.DoesNotContain(LoginModel.DisabledMessage, wrong.Html);
        var failed = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=signin.failed", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Contains(failed, e => e!["details"]?["reason"]?.GetValue<string>() == "account_disabled");
        var updated = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.updated", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal(["disabled"], updated[0]!["details"]!["fields"]!.AsArray().Select(f => f!.GetValue<string>()));

        Assert.False((await PatchAsync(new { disabled = false }))["disabled"]!.GetValue<bool>());
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password)).SignedIn);
    }

    [Fact]
    public async Task ADisabledAccount_IsSentNoResetLink_AndItsLinksStopWorking()
    {
        using var browser = _factory.CreateBrowser();
        await PageForms.PostAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });
        var link = SmtpCapture.LinkIn(await _smtp.MailToAsync("ada@acme.test"), "/reset-password");

        await PatchAsync(new { disabled = true });
        var asked = await PageForms.PostAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });

        Assert.Contains(ForgotPasswordModel.SentMessage, asked);
        await Task.Delay(300);
        Assert.Single(_smtp.Messages);
        var requests = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=password_reset.requested", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal("account_disabled", requests[0]!["details"]!["reason"]!.GetValue<string>());
        var reset = await PageForms.PostAsync(_factory.CreateBrowser(), link,
            new() { ["NewPassword"] = "yet another long passphrase", ["ConfirmPassword"] = "yet another long passphrase" }, "/t/acme/forgot-password");
        Assert.DoesNotContain("Your password is set", reset);
        Assert.Contains(LoginModel.DisabledMessage, (await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password)).Html);
    }

    [Fact]
    public async Task AnAccountMadeDisabled_CannotSignIn_TheFieldMustBeABoolean_AndTheListFiltersOnIt()
    {
        var id = await _factory.CreateUserAsync("acme", "grace@acme.test", Password, new { disabled = true });

        var user = await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{id}", expected: HttpStatusCode.OK);
        Assert.True(user["disabled"]!.GetValue<bool>());
        Assert.False((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("grace@acme.test", Password)).SignedIn);
        Assert.False((await _factory.ManageOkAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}", expected: HttpStatusCode.OK))["disabled"]!.GetValue<bool>());
        var bad = await _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", new { disabled = "yes" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        // The list filters on it.
        var listed = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/users?disabled=true", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal([id], listed.Select(u => u!["id"]!.GetValue<string>()));
        var enabled = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/users?disabled=false", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal([_userId], enabled.Select(u => u!["id"]!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.BadRequest, (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/users?disabled=maybe")).StatusCode);
    }

    [Fact]
    public async Task SigningAUserOut_EndsItsSessionsAndTokens_ButNotTheAccount()
    {
        using var browser = _factory.CreateBrowser();
        var flow = new OidcFlow(browser, "acme", "web");
        var tokens = await flow.SignInAsync("ada@acme.test", Password);

        var response = await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{_userId}/signout");

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await flow.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await flow.UserInfoStatusAsync(tokens.GetProperty("access_token").GetString()!));
        var silent = new OidcFlow(browser, "acme", "web");
        silent.Extra["prompt"] = "none";
        Assert.Contains("error=login_required", OidcFlow.Location(await browser.GetAsync(silent.AuthorizeUrl())).Query);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password)).SignedIn);
        var ended = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.sessions_ended", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.StartsWith("client:", Assert.Single(ended)!["actor"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Post, $"/api/v1/tenants/acme/users/{Guid.NewGuid()}/signout")).StatusCode);
    }

    private Task<JsonObject> PatchAsync(object body) =>
        _factory.ManageOkAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{_userId}", body, HttpStatusCode.OK);
}
