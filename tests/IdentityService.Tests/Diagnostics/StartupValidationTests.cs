using System.Net;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Diagnostics;

/// <summary>
/// A bad or missing setting stops the service at start, with a message naming the key. A failure shows the whole
/// exception: another error in its place (seen once in a full run: an ObjectDisposedException) needs its stack.
/// </summary>
public sealed class StartupValidationTests
{
    [Fact]
    public void OutsideDevelopment_WithoutABootstrapSecret_StopsNamingTheKey()
    {
        using var factory = new IdentityServiceFactory { Environment = "Production", AdminClientSecret = null, Settings = { ["Issuer:PublicOrigin"] = "https://id.example.test" } };

        var error = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.True(Flatten(error).Contains("Bootstrap:AdminClientSecret", StringComparison.Ordinal), error.ToString());
    }

    [Fact]
    public void OutsideDevelopment_WithoutAPublicOrigin_StopsNamingTheKey()
    {
        using var factory = new IdentityServiceFactory { Environment = "Production" };

        var error = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.True(Flatten(error).Contains("Issuer:PublicOrigin", StringComparison.Ordinal), error.ToString());
    }

    [Fact]
    public void UnknownDatabaseProvider_StopsNamingTheKey()
    {
        using var factory = new IdentityServiceFactory { Settings = { ["Database:Provider"] = "Oracle" } };

        var error = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.True(Flatten(error).Contains("Database:Provider", StringComparison.Ordinal), error.ToString());
    }

    [Fact]
    public async Task OutsideDevelopment_PlainHttp_IsRefusedByTheOpenIdConnectEndpoints_AndIssuersUseThePublicOrigin()
    {
        using var factory = new IdentityServiceFactory { Environment = "Production", Settings = { ["Issuer:PublicOrigin"] = "https://id.example.test" } };
        using var http = factory.CreateClient(new() { AllowAutoRedirect = false, BaseAddress = new Uri("http://localhost") });
        using var https = factory.CreateClient(new() { AllowAutoRedirect = false, BaseAddress = new Uri("https://attacker-chosen-host") });

        var plain = await http.PostAsync("/t/system/connect/token", new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }));
        var discovery = await https.GetStringAsync("/t/system/.well-known/openid-configuration");

        Assert.NotEqual(HttpStatusCode.OK, plain.StatusCode);
        Assert.True((int)plain.StatusCode < 500);
        Assert.Contains("\"issuer\": \"https://id.example.test/t/system\"", discovery);
        Assert.DoesNotContain("attacker-chosen-host", discovery);
    }

    private static string Flatten(Exception error) =>
        error is AggregateException aggregate ? string.Join(" | ", aggregate.InnerExceptions.Select(Flatten)) : error.Message + " | " + (error.InnerException is null ? "" : Flatten(error.InnerException));
}
