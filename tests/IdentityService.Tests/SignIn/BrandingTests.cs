using System.Net;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.SignIn;

/// <summary>A tenant's look on its pages (policy section <c>branding</c>): its logo, and its colour on the buttons.</summary>
public sealed class BrandingTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Logo = "https://cdn.acme.example/brand/logo.png";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateTenantAsync("other");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheLogoAndColour_AreOnTheTenantsPages_AndOnNoOtherTenants()
    {
        var before = await _factory.CreateBrowser().GetAsync("/t/acme/login");
        Assert.DoesNotContain("id=\"logo\"", await before.Content.ReadAsStringAsync());

        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { branding = new { logoUrl = Logo, primaryColor = "#ffd400" } }, HttpStatusCode.OK);

        foreach (var path in new[] { "/t/acme/login", "/t/acme/forgot-password" })
        {
            var answer = await _factory.CreateBrowser().GetAsync(path);
            var page = await answer.Content.ReadAsStringAsync();
            Assert.Contains($"<img class=\"logo\" id=\"logo\" src=\"{Logo}\" alt=\"ACME\" />", page);
            // A light colour gets black text, so the buttons stay readable.
            Assert.Contains("button:not(.secondary) { background: #ffd400; color: #000; }", page);
            Assert.Contains("img-src 'self' data: https://www.gstatic.com/recaptcha/ https://cdn.acme.example;", answer.Headers.GetValues("Content-Security-Policy").Single());
        }

        var other = await _factory.CreateBrowser().GetAsync("/t/other/login");
        Assert.DoesNotContain(Logo, await other.Content.ReadAsStringAsync());
        Assert.DoesNotContain("cdn.acme.example", other.Headers.GetValues("Content-Security-Policy").Single());

        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { branding = new { primaryColor = "#1a237e" } }, HttpStatusCode.OK);
        Assert.Contains("background: #1a237e; color: #fff;", await _factory.CreateBrowser().GetStringAsync("/t/acme/login"));
    }

    [Theory]
    [InlineData("""{"branding": {"logoUrl": "http://cdn.acme.example/logo.png"}}""", "branding.logoUrl")]
    [InlineData("""{"branding": {"logoUrl": "javascript:alert(1)"}}""", "branding.logoUrl")]
    [InlineData("""{"branding": {"logoUrl": "https://user:pw@cdn.acme.example/logo.png"}}""", "branding.logoUrl")]
    [InlineData("""{"branding": {"logoUrl": "/logo.png"}}""", "branding.logoUrl")]
    [InlineData("""{"branding": {"primaryColor": "red"}}""", "branding.primaryColor")]
    [InlineData("""{"branding": {"primaryColor": "#12345"}}""", "branding.primaryColor")]
    [InlineData("""{"branding": {"primaryColor": "#12345g"}}""", "branding.primaryColor")]
    [InlineData("""{"branding": {"primaryColor": "#123456; }"}}""", "branding.primaryColor")]
    public async Task BadBranding_Is400NamingIt(string patch, string field)
    {
        var response = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", JsonNode.Parse(patch));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]![field]);
    }
}
