using System.Net;
using IdentityService.Data;
using IdentityService.Pipeline;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// The sign-in page of a tenant as one browser at one address sees it: one GET for the anti-forgery token and
/// cookie, then as many posts of the form as a test needs, in parallel if it wants.
/// </summary>
public sealed class ParallelSignInPage : IDisposable
{
    private readonly HttpClient _browser;
    private readonly string _tenant;
    private readonly SemaphoreSlim _opening = new(1, 1);
    private string? _token;

    public ParallelSignInPage(IdentityServiceFactory factory, string tenant, string ip)
    {
        _browser = factory.CreateBrowser();
        _browser.DefaultRequestHeaders.Add(TestClientIp.Header, ip);
        _tenant = tenant;
    }

    /// <summary>Gets the page once: its anti-forgery token and cookie serve every post after it.</summary>
    public async Task OpenAsync()
    {
        await _opening.WaitAsync();
        try
        {
            if (_token is null)
            {
                var page = await _browser.GetAsync($"/t/{_tenant}/login");
                Assert.Equal(HttpStatusCode.OK, page.StatusCode);
                _token = OidcFlow.Hidden(await page.Content.ReadAsStringAsync(), "__RequestVerificationToken");
            }
        }
        finally
        {
            _opening.Release();
        }
    }

    /// <summary>Posts email and password; true when the page signed the person in (a redirect), false when it refused.</summary>
    public async Task<bool> SignInAsync(string email, string password)
    {
        await OpenAsync();
        var posted = await _browser.PostAsync($"/t/{_tenant}/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = email,
            ["Password"] = password,
            ["__RequestVerificationToken"] = _token!,
        }));
        var body = await posted.Content.ReadAsStringAsync();
        Assert.True(posted.StatusCode is HttpStatusCode.OK or HttpStatusCode.Redirect, $"{(int)posted.StatusCode}: {body}");
        return posted.StatusCode == HttpStatusCode.Redirect;
    }

    /// <summary>The reasons of the tenant's sign-in log, oldest first (null for a success).</summary>
    public static async Task<List<string?>> LoggedReasonsAsync(IdentityServiceFactory factory, string tenant) =>
        (await factory.SignInEventsAsync(tenant)).Select(e => e.Reason).ToList();

    public void Dispose()
    {
        _browser.Dispose();
        _opening.Dispose();
    }
}
