using System.Net;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Protection;

/// <summary>
/// Redis that does not answer: the service does not start by default; started anyway (abortConnect=false), it
/// refuses sign-ins with 503 rather than run them without their protections, and says it is not ready.
/// </summary>
public sealed class RedisUnavailableTests(ITestOutputHelper output)
{
    // Nothing listens on port 1 of the loopback.
    private const string Nowhere = "127.0.0.1:1,connectTimeout=500,syncTimeout=1000,asyncTimeout=1000,connectRetry=1";

    [Fact]
    public void ARedisThatDoesNotAnswer_StopsTheStartNamingTheKey()
    {
        using var factory = new IdentityServiceFactory { Output = output, Settings = { ["Redis:Configuration"] = Nowhere } };

        var error = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.Contains("Redis:Configuration", Flatten(error));
    }

    [Fact]
    public async Task StartedWithoutRedis_RefusesSignInsWith503AndRetryAfter_AndIsNotReady()
    {
        using var factory = new IdentityServiceFactory { Output = output, Settings = { ["Redis:Configuration"] = Nowhere + ",abortConnect=false" } };
        await factory.CreateTenantAsync("acme");
        await factory.CreateUserAsync("acme", "ada@acme.test", "correct horse battery staple");
        using var browser = factory.CreateBrowser();
        var page = await browser.GetAsync("/t/acme/login");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);

        var posted = await browser.PostAsync("/t/acme/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = "ada@acme.test",
            ["Password"] = "correct horse battery staple",
            ["__RequestVerificationToken"] = OidcFlow.Hidden(await page.Content.ReadAsStringAsync(), "__RequestVerificationToken"),
        }));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, posted.StatusCode);
        Assert.NotNull(posted.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await browser.GetAsync("/health/ready")).StatusCode);
    }

    private static string Flatten(Exception error) =>
        error is AggregateException aggregate ? string.Join(" | ", aggregate.InnerExceptions.Select(Flatten)) : error.Message + " | " + (error.InnerException is null ? "" : Flatten(error.InnerException));
}
