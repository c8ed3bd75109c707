using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Management;

/// <summary>A tenant takes its whole data out as one ZIP of JSON and NDJSON files, with no secret in it.</summary>
public sealed class TenantExportTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private const string Tenant = "acme";
    private const string Password = "correct horse battery staple";
    private const string Export = "/api/v1/tenants/acme/export";
    private readonly IdentityServiceFactory _factory = new() { Output = output };
    private string _userId = "";
    private string _clientSecret = "";
    private string _webhookSecret = "";

    public async Task InitializeAsync()
    {
        await _factory.CreateTenantAsync(Tenant);
        _userId = await _factory.CreateUserAsync(Tenant, "ada@acme.test", Password, new { name = "Ada Lovelace", roles = new[] { "ops" } });
        _clientSecret = "a client secret of the web app";
        await _factory.CreateWebClientAsync(Tenant, "web", secret: _clientSecret);
        var hook = await _factory.ManageOkAsync(HttpMethod.Post, "/api/v1/tenants/acme/webhooks", new { url = "http://127.0.0.1:9/hook", events = new[] { "user.deleted" } });
        _webhookSecret = hook["secret"]!.GetValue<string>();
        await _factory.ManageOkAsync(HttpMethod.Patch, "/api/v1/tenants/acme/policy",
            JsonNode.Parse("""{"captcha": {"provider": "v3", "siteKey": "site-key_1", "secretKey": "the-captcha-secret"}}"""), HttpStatusCode.OK);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _factory.Dispose();

    [Fact]
    public async Task TheArchive_HoldsEveryRecord_AndNoSecret()
    {
        var response = await _factory.ManageAsync(HttpMethod.Post, Export);
        var files = await ReadAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/zip", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("acme-export-", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        Assert.Equal(["audit-events.ndjson", "clients.ndjson", "consents.ndjson", "manifest.json", "passkeys.ndjson", "policy.json", "signups.ndjson", "tenant.json", "users.ndjson", "webhooks.ndjson"], files.Keys.Order());
        var manifest = JsonNode.Parse(files["manifest.json"])!;
        Assert.Equal("identityservice-export/1", manifest["format"]!.GetValue<string>());
        Assert.Equal(1, manifest["files"]!.AsArray().Single(f => f!["name"]!.GetValue<string>() == "users.ndjson")!["records"]!.GetValue<int>());
        Assert.Equal("acme", JsonNode.Parse(files["tenant.json"])!["id"]!.GetValue<string>());
        Assert.Equal("site-key_1", JsonNode.Parse(files["policy.json"])!["captcha"]!["siteKey"]!.GetValue<string>());
        var user = JsonNode.Parse(Assert.Single(Lines(files["users.ndjson"])))!;
        Assert.Equal((_userId, "ada@acme.test", "Ada Lovelace", "ops"),
            (user["id"]!.GetValue<string>(), user["email"]!.GetValue<string>(), user["name"]!.GetValue<string>(), user["roles"]![0]!.GetValue<string>()));
        Assert.Null(user["passwordHash"]);
        Assert.Equal("web", JsonNode.Parse(Assert.Single(Lines(files["clients.ndjson"])))!["clientId"]!.GetValue<string>());
        Assert.Equal("http://127.0.0.1:9/hook", JsonNode.Parse(Assert.Single(Lines(files["webhooks.ndjson"])))!["url"]!.GetValue<string>());
        var types = Lines(files["audit-events.ndjson"]).Select(l => JsonNode.Parse(l)!["type"]!.GetValue<string>()).ToList();
        Assert.Equal(["user.created", "client.created", "webhook.created", "policy.changed"], types);
        var everything = string.Join("\n", files.Values);
        Assert.DoesNotContain(_clientSecret, everything);
        Assert.DoesNotContain(_webhookSecret["whsec_".Length..], everything);
        Assert.DoesNotContain("the-captcha-secret", everything);
        Assert.DoesNotContain("AQAAAA", everything);
    }

    [Fact]
    public async Task Passkeys_AreExportedWithTheirPublicKeys_OnlyTheTenants()
    {
        await _factory.CreateTenantAsync("globex");
        var eve = await _factory.CreateUserAsync("globex", "eve@globex.test", Password);
        await AddPasskeyAsync(Tenant, _userId, [1, 2, 3, 4], "Work laptop");
        await AddPasskeyAsync("globex", eve, [9, 9, 9, 9], "Eve's phone");

        var files = await ReadAsync(await _factory.ManageAsync(HttpMethod.Post, Export));

        var passkey = JsonNode.Parse(Assert.Single(Lines(files["passkeys.ndjson"])))!;
        Assert.Equal((_userId, "AQIDBA", "Work laptop", "pQECAyYgASFYIA"),
            (passkey["userId"]!.GetValue<string>(), passkey["credentialId"]!.GetValue<string>(), passkey["name"]!.GetValue<string>(), passkey["publicKey"]!.GetValue<string>()[..14]));
        Assert.Equal(7u, passkey["signCount"]!.GetValue<uint>());
        Assert.Equal(["internal"], passkey["transports"]!.AsArray().Select(t => t!.GetValue<string>()));
    }

    [Fact]
    public async Task ConsentsAndWaitingSignUps_AreExported_WithoutAPasswordOrLink()
    {
        await _factory.CreateWebClientAsync(Tenant, "partner", firstParty: false);
        using (var scope = await _factory.TenantScopeAsync(Tenant))
        {
            var applications = scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictApplicationManager>();
            var authorizations = scope.ServiceProvider.GetRequiredService<OpenIddict.Abstractions.IOpenIddictAuthorizationManager>();
            var partner = await applications.FindByClientIdAsync("partner");
            foreach (var (type, status) in new[] { ("permanent", "valid"), ("permanent", "revoked"), ("ad-hoc", "valid") })
            {
                var descriptor = new OpenIddict.Abstractions.OpenIddictAuthorizationDescriptor
                {
                    ApplicationId = await applications.GetIdAsync(partner!), CreationDate = _factory.Time.GetUtcNow(), Status = status, Subject = _userId, Type = type,
                };
                descriptor.Scopes.UnionWith(["openid", "email"]);
                await authorizations.CreateAsync(descriptor);
            }

            var db = scope.ServiceProvider.GetRequiredService<IdentityService.Data.IdentityDb>();
            db.Add(new IdentityService.Users.PendingSignUp
            {
                Id = Guid.NewGuid(), Email = "new@acme.test", NormalizedEmail = "NEW@ACME.TEST", Name = "New Person", PasswordHash = "AQAAAAIAAYagAAAAEPending",
                TokenHash = [7, 7, 7], CreatedAt = _factory.Time.GetUtcNow(), ExpiresAt = _factory.Time.GetUtcNow().AddHours(1),
            });
            await db.SaveChangesAsync();
        }

        var files = await ReadAsync(await _factory.ManageAsync(HttpMethod.Post, Export + "?includePasswordHashes=true"));

        var consent = JsonNode.Parse(Assert.Single(Lines(files["consents.ndjson"])))!;
        Assert.Equal((_userId, "partner"), (consent["userId"]!.GetValue<string>(), consent["clientId"]!.GetValue<string>()));
        Assert.Equal(["email", "openid"], consent["scopes"]!.AsArray().Select(s => s!.GetValue<string>()).Order());
        var signUp = JsonNode.Parse(Assert.Single(Lines(files["signups.ndjson"])))!;
        Assert.Equal(("new@acme.test", "New Person"), (signUp["email"]!.GetValue<string>(), signUp["name"]!.GetValue<string>()));
        Assert.DoesNotContain("Pending", files["signups.ndjson"]);
        Assert.Null(signUp["tokenHash"]);
    }

    /// <summary>Stores a passkey for a user as Identity's handler would after a registration (the key is a made-up COSE EC2 P-256 key).</summary>
    private async Task AddPasskeyAsync(string tenant, string userId, byte[] credentialId, string name)
    {
        using var scope = _factory.Services.CreateScope();
        var directory = scope.ServiceProvider.GetRequiredService<IdentityService.Tenancy.TenantDirectory>();
        scope.ServiceProvider.GetRequiredService<IdentityService.Tenancy.TenantContext>().Set((await directory.FindAsync(tenant, CancellationToken.None))!);
        var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<IdentityService.Users.AppUser>>();
        var user = (await users.FindByIdAsync(userId))!;
        byte[] publicKey = [0xA5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20, .. new byte[32], 0x22, 0x58, 0x20, .. new byte[32]];
        var passkey = new Microsoft.AspNetCore.Identity.UserPasskeyInfo(credentialId, publicKey, DateTimeOffset.UnixEpoch, 7, ["internal"], true, false, false, [], []) { Name = name };
        Assert.True((await users.AddOrUpdatePasskeyAsync(user, passkey)).Succeeded);
    }

    [Fact]
    public async Task PasswordHashes_OnlyWhenAsked_AndTheExportIsAudited()
    {
        var files = await ReadAsync(await _factory.ManageAsync(HttpMethod.Post, Export + "?includePasswordHashes=true"));
        var user = JsonNode.Parse(Assert.Single(Lines(files["users.ndjson"])))!;

        // ASP.NET Core Identity's version 3 format: a 0x01 marker, then PRF, iterations, salt length, salt and subkey.
        var hash = Convert.FromBase64String(user["passwordHash"]!.GetValue<string>());
        Assert.Equal(0x01, hash[0]);
        Assert.Equal("ada@acme.test", user["email"]!.GetValue<string>());
        var exported = (await _factory.ManageOkAsync(HttpMethod.Get, "/api/v1/tenants/acme/audit-events?type=tenant.exported", expected: HttpStatusCode.OK))["items"]!.AsArray();
        Assert.True(Assert.Single(exported)!["details"]!["passwordHashes"]!.GetValue<bool>());
    }

    [Fact]
    public async Task AnotherTenantsAdmin_CannotExportIt()
    {
        await _factory.CreateTenantAsync("other");
        var token = await _factory.TenantAdminTokenAsync("other");

        var response = await _factory.ManageAsync(HttpMethod.Post, Export, token: token);
        var own = await _factory.ManageAsync(HttpMethod.Post, "/api/v1/tenants/other/export", token: token);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        Assert.DoesNotContain("ada@acme.test", string.Join("\n", (await ReadAsync(own)).Values));
    }

    [Fact]
    public async Task ABadOption_Is400()
    {
        var response = await _factory.ManageAsync(HttpMethod.Post, Export + "?includePasswordHashes=yes");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errors"]!["includePasswordHashes"]);
    }

    private static async Task<Dictionary<string, string>> ReadAsync(HttpResponseMessage response)
    {
        using var zip = new ZipArchive(new MemoryStream(await response.Content.ReadAsByteArrayAsync()), ZipArchiveMode.Read);
        return zip.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var reader = new StreamReader(e.Open(), Encoding.UTF8);
            return reader.ReadToEnd();
        });
    }

    private static string[] Lines(string ndjson) => ndjson.Split('\n', StringSplitOptions.RemoveEmptyEntries);
}
