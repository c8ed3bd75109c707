using System.Net;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.SignIn;

/// <summary>
/// A tenant's password rules (policy section <c>passwords</c>): a length and a zxcvbn strength, held by every way a
/// password is set, with the account's own email and names counted as words a guesser knows.
/// </summary>
public sealed class PasswordRulesTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Users = "/api/v1/tenants/acme/users";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync() => await _factory.CreateTenantAsync("acme");

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task ByDefault_EightCharacters_AndStrengthTwoOfFour()
    {
        var policy = await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/policy", expected: HttpStatusCode.OK);

        Assert.Equal(8, policy["passwords"]!["minLength"]!.GetValue<int>());
        Assert.Equal(2, policy["passwords"]!["minStrength"]!.GetValue<int>());
        await AssertRefusedAsync("password1", "too easy to guess");
        await AssertRefusedAsync("qwertyuiop", "too easy to guess");
        await AssertRefusedAsync("short", "at least 8 characters");
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync("correct horse battery staple")).StatusCode);
    }

    [Fact]
    public async Task TheAccountsOwnWords_CountAsGuessable()
    {
        var own = await CreateAsync("xqzvbrtlmnkpwdfg1", "xqzvbrtlmnkpwdfg@acme.test");
        var others = await CreateAsync("xqzvbrtlmnkpwdfg1", "ada@acme.test");

        Assert.Equal(HttpStatusCode.BadRequest, own.StatusCode);
        Assert.Equal(HttpStatusCode.Created, others.StatusCode);
    }

    [Fact]
    public async Task ATenant_SetsItsOwnRules()
    {
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", new { passwords = new { minLength = 12, minStrength = 0 } }, HttpStatusCode.OK);

        await AssertRefusedAsync("eleven char", "at least 12 characters");
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync("password1234")).StatusCode);
    }

    [Fact]
    public async Task AnAdminsPasswordChange_MeetsTheRulesToo()
    {
        var id = await _factory.CreateUserAsync("acme", "ada@acme.test", "correct horse battery staple");

        var response = await _factory.ManageAsync(HttpMethod.Patch, $"{Users}/{id}", new { password = "letmein123" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("too easy to guess", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("""{"passwords": {"minLength": 7}}""", "passwords.minLength")]
    [InlineData("""{"passwords": {"minLength": 129}}""", "passwords.minLength")]
    [InlineData("""{"passwords": {"minStrength": 5}}""", "passwords.minStrength")]
    [InlineData("""{"passwords": {"minStrength": -1}}""", "passwords.minStrength")]
    public async Task BadRules_Are400NamingThem(string patch, string field)
    {
        var response = await _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy", JsonNode.Parse(patch));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]![field]);
    }

    private Task<HttpResponseMessage> CreateAsync(string password, string email = "ada@acme.test") =>
        _factory.ManageAsync(HttpMethod.Post, Users, new { email, password });

    private async Task AssertRefusedAsync(string password, string because)
    {
        var response = await CreateAsync(password);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, text);
        Assert.Contains(because, JsonNode.Parse(text)!["errors"]!["password"]!.ToJsonString());
    }
}
