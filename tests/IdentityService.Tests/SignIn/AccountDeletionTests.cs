using System.Net;
using IdentityService.Tests.Infrastructure;
using IdentityService.Users;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A signed-in person deletes their own account on <c>/account/delete</c>, where the tenant allows it: with their
/// password; then nothing of the account signs in or refreshes, what the service kept about it is gone, and the
/// owner is mailed (a real SMTP server on this machine).
/// </summary>
public sealed class AccountDeletionTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
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
        _userId = await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
        await _factory.CreateUserAsync("acme", "bob@acme.test", Password);
    }

    public async Task DisposeAsync() => await _smtp.DisposeAsync();

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ThePassword_DeletesTheAccount_AndEverythingThatSignedInWithIt()
    {
        await AllowAsync();
        using var here = await SignedInAsync("ada@acme.test");
        using var app = _factory.CreateBrowser();
        var tokens = await new OidcFlow(app, "acme", "web").SignInAsync("ada@acme.test", Password);
        Assert.Contains("href=\"delete\" id=\"delete-account\"", await here.GetStringAsync("/t/acme/account/security"));
        Assert.True(await SightingsAsync() > 0);

        Assert.Contains(PasswordChanges.WrongPasswordMessage, await DeleteAsync(here, "not my password"));
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}")).StatusCode);
        Assert.Contains("Your account is deleted.", await DeleteAsync(here, Password));

        Assert.Equal(HttpStatusCode.NotFound, (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await here.GetAsync("/t/acme/account/security")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await new OidcFlow(app, "acme", "web").RefreshAsync(tokens.GetProperty("refresh_token").GetString()!)).StatusCode);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("ada@acme.test", Password)).Refused);
        Assert.True((await new SignInPage(_factory.CreateBrowser(), "acme").PostAsync("bob@acme.test", Password)).SignedIn);
        Assert.Equal(0, await SightingsAsync());
        Assert.Equal("Your ACME account is deleted", (await _smtp.MailToAsync("ada@acme.test")).Subject);

        var entries = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=user.*", expected: HttpStatusCode.OK))["items"]!.AsArray()
            .Where(e => e!["type"]!.GetValue<string>().StartsWith("user.delet", StringComparison.Ordinal))
            .Select(e => e!["type"]!.GetValue<string>() + ":" + e["outcome"]!.GetValue<string>() + ":" + e["actor"]!.GetValue<string>());
        Assert.Equal([$"user.deleted:succeeded:user:{_userId}@acme", $"user.deletion_refused:failed:user:{_userId}@acme"], entries);
    }

    [Fact]
    public async Task OffByDefault()
    {
        using var here = await SignedInAsync("ada@acme.test");

        Assert.DoesNotContain("delete-account", await here.GetStringAsync("/t/acme/account/security"));
        Assert.Contains("Accounts cannot be deleted here.", await here.GetStringAsync("/t/acme/account/delete"));
        Assert.Contains("Accounts cannot be deleted here.", await PageForms.PostAsync(here, "/t/acme/account/delete", new() { ["CurrentPassword"] = Password }, "/t/acme/account/security"));
        Assert.Equal(HttpStatusCode.OK, (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{_userId}")).StatusCode);
    }

    [Fact]
    public async Task WithoutASignIn_ThePageSendsToTheSignInPage()
    {
        await AllowAsync();
        using var stranger = _factory.CreateBrowser();

        Assert.Equal("/t/acme/login?ReturnUrl=%2Ft%2Facme%2Faccount%2Fdelete", (await stranger.GetAsync("/t/acme/account/delete")).Headers.Location!.OriginalString);
    }

    private Task AllowAsync() =>
        _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { account = new { allowDeletion = true } }, HttpStatusCode.OK);

    private async Task<HttpClient> SignedInAsync(string email)
    {
        var browser = _factory.CreateBrowser();
        Assert.True((await new SignInPage(browser, "acme").PostAsync(email, Password)).SignedIn);
        return browser;
    }

    private static Task<string> DeleteAsync(HttpClient browser, string password) =>
        PageForms.PostAsync(browser, "/t/acme/account/delete", new() { ["CurrentPassword"] = password });

    private async Task<int> SightingsAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
        return await db.Set<IdentityService.Protection.UserSighting>().CountAsync(s => s.UserId == Guid.Parse(_userId));
    }
}
