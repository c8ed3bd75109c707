using System.Net;
using IdentityService.SignIn.Pages;
using IdentityService.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A tenant's own SMTP server (the policy's <c>email.smtp</c>), a real one on loopback that asks for a login:
/// the tenant's mail goes through it and not through the service's, its password is never answered nor stored
/// as sent, and outside Development a server on a private address is refused.
/// </summary>
public sealed class TenantSmtpTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "correct horse battery staple";
    private const string SmtpPassword = "tenant-smtp-password-7f3a";
    private readonly SmtpCapture _service = SmtpCapture.Start();
    private readonly SmtpCapture _tenants = SmtpCapture.Start("acme-mailer", SmtpPassword);
    private IdentityServiceFactory _factory = null!;

    public async Task InitializeAsync()
    {
        _factory = new IdentityServiceFactory { Output = output };
        foreach (var (key, value) in _service.Settings)
        {
            _factory.Settings[key] = value;
        }

        await _factory.CreateTenantAsync("acme");
        await _factory.CreateTenantAsync("globex");
        await _factory.CreateUserAsync("acme", "ada@acme.test", Password);
        await _factory.CreateUserAsync("globex", "gus@globex.test", Password);
    }

    public async Task DisposeAsync()
    {
        await _service.DisposeAsync();
        await _tenants.DisposeAsync();
    }

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ATenantsMail_GoesThroughItsOwnServer_WhoseLoginIsKeptButNeverAnswered()
    {
        var policy = await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new
        {
            email = new { smtp = new { host = "127.0.0.1", port = _tenants.Port, userName = "acme-mailer", password = SmtpPassword, useTls = false, from = "ACME <no-reply@acme.test>" } },
        }, HttpStatusCode.OK);
        Assert.Equal("acme-mailer", policy["email"]!["smtp"]!["userName"]!.GetValue<string>());
        Assert.Null(policy["email"]!["smtp"]!["password"]);
        Assert.DoesNotContain(SmtpPassword, await (await _factory.ManageAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy")).Content.ReadAsStringAsync());
        Assert.DoesNotContain(SmtpPassword, await StoredPolicyAsync());

        // A change that leaves the password out keeps it: the server still takes the login.
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { email = new { smtp = new { from = "ACME sign-in <no-reply@acme.test>" } } }, HttpStatusCode.OK);
        await AskResetAsync("acme", "ada@acme.test");
        await AskResetAsync("globex", "gus@globex.test");

        await Eventually.TrueAsync(() => !_tenants.Messages.IsEmpty && !_service.Messages.IsEmpty, "Both tenants' mail was not delivered.");
        var mail = Assert.Single(_tenants.Messages);
        Assert.Equal("ada@acme.test", mail.To.Mailboxes.Single().Address);
        Assert.Equal("no-reply@acme.test", mail.From.Mailboxes.Single().Address);
        Assert.Equal("gus@globex.test", Assert.Single(_service.Messages).To.Mailboxes.Single().Address);
    }

    [Fact]
    public async Task TheKeptPassword_IsNeverSentToAnotherServer_ItMustBeGivenAgain()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new
        {
            email = new { smtp = new { host = "127.0.0.1", port = _tenants.Port, userName = "acme-mailer", password = SmtpPassword, useTls = false, from = "ACME <no-reply@acme.test>" } },
        }, HttpStatusCode.OK);

        // Whoever holds a manage token points the server elsewhere, leaving the password out: refused, nothing stored.
        foreach (var change in new object[] { new { port = _service.Port }, new { host = "localhost" }, new { userName = "someone-else" } })
        {
            var refused = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { email = new { smtp = change } });
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("email.smtp.password", await refused.Content.ReadAsStringAsync());
        }

        var policy = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);
        Assert.Equal(_tenants.Port, policy["email"]!["smtp"]!["port"]!.GetValue<int>());

        // Given again with the new server, it is taken.
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { email = new { smtp = new { userName = "acme-mailer-2", password = "another-smtp-password" } } }, HttpStatusCode.OK);
    }

    [Fact]
    public async Task WithoutTheServicesServer_ATenantsOwnOffersPasswordReset()
    {
        using var factory = new IdentityServiceFactory { Output = output };
        await factory.CreateTenantAsync("acme");
        using var browser = factory.CreateBrowser();
        Assert.DoesNotContain("forgot-password", await browser.GetStringAsync("/t/acme/login"));

        await factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new
        {
            email = new { smtp = new { host = "127.0.0.1", port = _tenants.Port, userName = "acme-mailer", password = SmtpPassword, useTls = false, from = "no-reply@acme.test" } },
        }, HttpStatusCode.OK);
        Assert.Contains("href=\"forgot-password\"", await browser.GetStringAsync("/t/acme/login"));
    }

    [Theory]
    [InlineData("{\"host\": \"\", \"from\": \"a@b.test\"}", "email.smtp.host")]
    [InlineData("{\"host\": \"smtp example\", \"from\": \"a@b.test\"}", "email.smtp.host")]
    [InlineData("{\"host\": \"smtp.example.com\", \"from\": \"not an address\"}", "email.smtp.from")]
    [InlineData("{\"host\": \"smtp.example.com\", \"from\": \"a@b.test\", \"port\": 0}", "email.smtp.port")]
    public async Task ABadServer_IsRefusedByName(string smtp, string field)
    {
        var answer = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", System.Text.Json.Nodes.JsonNode.Parse($"{{\"email\": {{\"smtp\": {smtp}}}}}"));
        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        Assert.Contains(field, await answer.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task OutsideDevelopment_AServerOnAPrivateAddressIsRefused()
    {
        using var factory = new IdentityServiceFactory { Output = output, Environment = "Production", Settings = { ["Issuer:PublicOrigin"] = "https://id.example.test" } };
        factory.ClientOptions.BaseAddress = new Uri("https://id.example.test");
        await factory.CreateTenantAsync("acme");

        foreach (var host in new[] { "127.0.0.1", "10.1.2.3", "localhost", "::1" })
        {
            var refused = await factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { email = new { smtp = new { host, from = "a@acme.test" } } });
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("email.smtp.host", await refused.Content.ReadAsStringAsync());
        }

        await factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { email = new { smtp = new { host = "smtp.example.com", from = "a@acme.test" } } }, HttpStatusCode.OK);
    }

    private async Task AskResetAsync(string tenant, string email)
    {
        using var browser = _factory.CreateBrowser();
        var page = await browser.GetStringAsync($"/t/{tenant}/forgot-password");
        var answer = await browser.PostAsync($"/t/{tenant}/forgot-password", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = email,
            ["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(page),
        }));
        Assert.Contains(ForgotPasswordModel.SentMessage, await answer.Content.ReadAsStringAsync());
    }

    private async Task<string> StoredPolicyAsync()
    {
        using var scope = await _factory.TenantScopeAsync("acme");
        var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
        return (await db.Set<IdentityService.Policy.TenantPolicyRecord>().AsNoTracking().SingleAsync()).Document;
    }
}
