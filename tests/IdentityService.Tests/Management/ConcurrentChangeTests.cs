using System.Net;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Management;

/// <summary>
/// Management writes sent at once (a script's parallel calls, two admins): each is answered, a lost race with 409,
/// never a 500, and what a 2xx says happened did happen.
/// </summary>
public sealed class ConcurrentChangeTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Password = "a long enough password 42";
    private readonly IdentityServiceFactory _factory = new() { Output = output };

    public async Task InitializeAsync() => await _factory.CreateTenantAsync("acme");

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheSameClientCreatedAtOnce_IsCreatedOnce_TheOthersAre409()
    {
        var answers = await AllAtOnceAsync(16, _ => _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new
        {
            clientId = "twin",
            generateSecret = true,
            grantTypes = new[] { "client_credentials" },
        }));

        Assert.Equal(1, answers.Count(a => a == HttpStatusCode.Created));
        Assert.All(answers.Where(a => a != HttpStatusCode.Created), a => Assert.Equal(HttpStatusCode.Conflict, a));
    }

    [Fact]
    public async Task AClientChangedRotatedAndDeletedAtOnce_NeverAnswers5xx()
    {
        await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients", new { clientId = "busy", generateSecret = true, grantTypes = new[] { "client_credentials" } });

        var answers = await AllAtOnceAsync(16, i => i switch
        {
            15 => _factory.ManageAsync(HttpMethod.Delete, "/api/v1/tenants/acme/clients/busy"),
            _ when i % 3 == 0 => _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/clients/busy/secret"),
            _ => _factory.ManageAsync(HttpMethod.Patch, "/api/v1/tenants/acme/clients/busy", new { displayName = $"busy {i}" }),
        });

        Assert.All(answers, a => Assert.True(a is HttpStatusCode.OK or HttpStatusCode.NoContent or HttpStatusCode.Conflict or HttpStatusCode.NotFound, a.ToString()));
    }

    [Fact]
    public async Task AUserChangedAndDeletedAtOnce_NeverAnswers5xx_AndADeleteAnswered204Happened()
    {
        var id = await _factory.CreateUserAsync("acme", "busy@acme.test", Password);

        var answers = await AllAtOnceAsync(12, i => i == 5
            ? _factory.ManageAsync(HttpMethod.Delete, $"/api/v1/tenants/acme/users/{id}")
            : _factory.ManageAsync(HttpMethod.Patch, $"/api/v1/tenants/acme/users/{id}", new { name = $"n{i}", roles = new[] { $"r{i % 3}" } }));

        Assert.All(answers, a => Assert.True(a is HttpStatusCode.OK or HttpStatusCode.NoContent or HttpStatusCode.Conflict or HttpStatusCode.NotFound, a.ToString()));
        var after = (await _factory.ManageAsync(HttpMethod.Get, $"/api/v1/tenants/acme/users/{id}")).StatusCode;
        Assert.Equal(answers[5] == HttpStatusCode.NoContent ? HttpStatusCode.NotFound : HttpStatusCode.OK, after);
    }

    [Fact]
    public async Task UsersCreatedAtOnce_NamingTheSameNewRole_AreAllCreatedWithIt()
    {
        var answers = await AllAtOnceAsync(12, i => _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/acme/users", new
        {
            email = $"user{i}@acme.test",
            password = Password,
            roles = new[] { "auditor" },
        }));

        // Each answer is what happened: a user created has the role, and none exists that the answers do not name.
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.Created, a));
        var users = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/users?limit=100", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal(12, users.Count);
        Assert.All(users, u => Assert.Equal(["auditor"], u!["roles"]!.AsArray().Select(r => r!.GetValue<string>())));
    }

    [Fact]
    public async Task ATenantsFirstPolicyChangesAtOnce_NeverAnswer5xx()
    {
        var answers = await AllAtOnceAsync(10, i => _factory.ManageAsync(HttpMethod.Put, "/api/v1/tenants/acme/policy", new { lockout = new { maxFailedAttempts = 3 + i } }));

        Assert.All(answers, a => Assert.True(a is HttpStatusCode.OK or HttpStatusCode.Conflict, a.ToString()));
        Assert.Contains(HttpStatusCode.OK, answers);
    }

    private static async Task<HttpStatusCode[]> AllAtOnceAsync(int count, Func<int, Task<HttpResponseMessage>> send)
    {
        using var start = new SemaphoreSlim(0);
        var requests = Enumerable.Range(0, count).Select(async i =>
        {
            await start.WaitAsync();
            using var response = await send(i);
            return response.StatusCode;
        }).ToList();
        start.Release(count);
        return await Task.WhenAll(requests);
    }
}
