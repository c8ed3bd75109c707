using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using IdentityService.Data;
using IdentityService.Pipeline;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Infrastructure;

/// <summary>Helpers of the sign-in protection tests: the tenant's policy through the API, and the sign-in log.</summary>
public static class SignInTesting
{
    /// <summary>PATCH /api/v1/tenants/{tenant}/policy as a JSON merge patch; asserts 200.</summary>
    public static async Task PatchPolicyAsync(this IdentityServiceFactory factory, string tenant, object patch)
    {
        using var client = factory.CreateApi();
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"/api/v1/tenants/{tenant}/policy")
        {
            Content = new StringContent(JsonSerializer.Serialize(patch), Encoding.UTF8, "application/merge-patch+json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await factory.AdminTokenAsync());
        var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"PATCH policy: {(int)response.StatusCode} {body}");
    }

    /// <summary>A browser whose requests come from <paramref name="ip"/> (the connection's address).</summary>
    public static HttpClient CreateBrowserFrom(this IdentityServiceFactory factory, string ip)
    {
        var browser = factory.CreateBrowser();
        browser.DefaultRequestHeaders.Add(TestClientIp.Header, ip);
        return browser;
    }
}
