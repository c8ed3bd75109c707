using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// A form the server cannot read is the caller's error, answered in the endpoint's own terms: an OAuth error from
/// the back-channel endpoints, the tenant's error page wherever a person is.
/// </summary>
public sealed class UnreadableFormTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public static TheoryData<string> Forms => ["utf-7", "nul", "too-many-fields"];

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync("acme");
        await _factory.CreateWebClientAsync("acme");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Theory]
    [MemberData(nameof(Forms))]
    public async Task BackChannelEndpoints_AnswerInvalidRequest(string form)
    {
        foreach (var endpoint in new[] { "token", "introspect", "revoke", "userinfo" })
        {
            using var client = _factory.CreateApi();
            using var response = await client.PostAsync($"/t/acme/connect/{endpoint}", Body(form));

            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("invalid_request", json.RootElement.GetProperty("error").GetString());
        }
    }

    [Theory]
    [MemberData(nameof(Forms))]
    public async Task PagesAPersonSees_AnswerTheErrorPage(string form)
    {
        foreach (var path in new[] { "connect/authorize", "connect/endsession", "login", "logout", "consent" })
        {
            using var browser = _factory.CreateBrowser();
            using var response = await browser.PostAsync($"/t/acme/{path}", Body(form));

            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("The request could not be completed.", await response.Content.ReadAsStringAsync());
        }
    }

    private static ByteArrayContent Body(string form)
    {
        var text = form switch
        {
            "nul" => "client_id=web&grant_type=client_credentials%00&token=x",
            "too-many-fields" => string.Join('&', Enumerable.Range(0, 1100).Select(i => $"f{i}=v")),
            _ => "client_id=web&grant_type=client_credentials&token=x",
        };
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(text));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(
            form == "utf-7" ? "application/x-www-form-urlencoded; charset=utf-7" : "application/x-www-form-urlencoded");
        return content;
    }
}
