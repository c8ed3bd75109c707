using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using IdentityService.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IdentityService.Tests.Oidc;

/// <summary>
/// A stock ASP.NET Core relying party (cookie + OpenIdConnect handlers, nothing custom in the protocol)
/// signs a person in against the service, both on real loopback ports: discovery, authorize with PKCE,
/// the sign-in page, form_post back to the relying party, code redemption, ID token and userinfo checks.
/// The person's browser is an HttpClient with a cookie jar that follows nothing by itself.
/// </summary>
public sealed partial class StockRelyingPartyTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Tenant = "acme";
    private const string ClientId = "stock-rp";
    private const string Email = "ada@acme.test";
    private const string Password = "correct horse battery staple";

    private readonly KestrelIdentityServiceFactory _factory = new();
    private readonly string _clientSecret = Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
    private WebApplication? _rp;
    private Uri _rpAddress = null!;

    public async Task InitializeAsync()
    {
        _factory.Output = output;
        var service = _factory.Start();
        await _factory.CreateTenantAsync(Tenant);
        await _factory.CreateUserAsync(Tenant, Email, Password, new { name = "Ada Lovelace" });

        _rp = BuildRelyingParty(new Uri(service, $"/t/{Tenant}").ToString());
        await _rp.StartAsync();
        _rpAddress = new Uri(_rp.Urls.Single());

        await _factory.ManageOkAsync(HttpMethod.Post, $"/api/v1/tenants/{Tenant}/clients", new Dictionary<string, object?>
        {
            ["clientId"] = ClientId,
            ["clientSecret"] = _clientSecret,
            ["displayName"] = "Stock relying party",
            ["redirectUris"] = new[] { new Uri(_rpAddress, "/signin-oidc").ToString() },
            ["postLogoutRedirectUris"] = new[] { new Uri(_rpAddress, "/signout-callback-oidc").ToString() },
            ["grantTypes"] = new[] { "authorization_code", "refresh_token" },
            ["scopes"] = new[] { "openid", "profile", "email" },
            ["firstParty"] = true,
        });
    }

    public async Task DisposeAsync()
    {
        if (_rp is not null)
        {
            await _rp.StopAsync();
            await _rp.DisposeAsync();
        }

        await _factory.DisposeAsync();
    }

    [Fact]
    public async Task StockOpenIdConnectHandler_SignsInThroughTheSignInPageAndFormPost_AndItsProtectedPageAnswersWithTheUsersEmail()
    {
        // Arrange
        using var browser = NewBrowser();

        // Act
        var flow = await SignInThroughTheRelyingPartyAsync(browser);
        var body = await flow.Me.Content.ReadAsStringAsync();

        // Assert
        var authorizeQuery = QueryHelpers.ParseQuery(flow.Authorize.Query);
        Assert.Equal(new Uri(_factory.Address, $"/t/{Tenant}/connect/authorize"), new Uri(flow.Authorize.GetLeftPart(UriPartial.Path)));
        // The handler pushed its request (RFC 9126), as it does whenever discovery names the endpoint: the browser
        // carries the request_uri alone; the form post below shows the pushed response_mode was kept.
        // (It adds its own telemetry parameters, x-client-SKU and x-client-ver, which the service ignores.)
        Assert.DoesNotContain(authorizeQuery.Keys, k => k is "redirect_uri" or "scope" or "response_mode" or "state" or "nonce" or "code_challenge");
        Assert.StartsWith("urn:ietf:params:oauth:request_uri:", authorizeQuery["request_uri"].ToString());
        Assert.Equal($"/t/{Tenant}/login", flow.Login.AbsolutePath);
        Assert.Equal(new Uri(_rpAddress, "/signin-oidc"), flow.FormPostAction);
        Assert.Contains("code", flow.FormPostFields.Keys);
        Assert.Equal(new Uri(_rpAddress, "/me"), flow.AfterCallback);

        Assert.True(flow.Me.StatusCode == HttpStatusCode.OK, body);
        var profile = JsonDocument.Parse(body).RootElement;
        Assert.Equal(Email, profile.GetProperty("email").GetString());
        Assert.Equal("Ada Lovelace", profile.GetProperty("name").GetString());
        Assert.True(profile.GetProperty("hasAccessToken").GetBoolean());
        Assert.True(profile.GetProperty("hasIdToken").GetBoolean());
    }

    [Fact]
    public async Task StockOpenIdConnectHandler_SignOut_EndsTheServiceSessionAndReturnsToTheRelyingParty_SoTheNextVisitAsksToSignInAgain()
    {
        // Arrange
        using var browser = NewBrowser();
        var signedIn = await SignInThroughTheRelyingPartyAsync(browser);
        Assert.Equal(HttpStatusCode.OK, signedIn.Me.StatusCode);

        // Act: the relying party's sign-out goes to the service's end-session endpoint and back.
        var endSession = Redirect(await browser.GetAsync(new Uri(_rpAddress, "/logout")));
        var signOutCallback = Redirect(await browser.GetAsync(endSession));
        var signedOut = Redirect(await browser.GetAsync(signOutCallback));
        var nextVisit = Redirect(await browser.GetAsync(new Uri(_rpAddress, "/me")));
        var nextAuthorize = Redirect(await browser.GetAsync(nextVisit));

        // Assert
        var endSessionQuery = QueryHelpers.ParseQuery(endSession.Query);
        Assert.Equal(new Uri(_factory.Address, $"/t/{Tenant}/connect/endsession"), new Uri(endSession.GetLeftPart(UriPartial.Path)));
        Assert.True(endSessionQuery.ContainsKey("id_token_hint"), endSession.ToString());
        Assert.Equal(new Uri(_rpAddress, "/signout-callback-oidc"), new Uri(signOutCallback.GetLeftPart(UriPartial.Path)));
        Assert.Equal(new Uri(_rpAddress, "/signed-out"), signedOut);
        Assert.Equal($"/t/{Tenant}/connect/authorize", nextVisit.AbsolutePath);
        Assert.Equal($"/t/{Tenant}/login", nextAuthorize.AbsolutePath);
    }

    /// <summary>
    /// Visits the relying party's protected page and follows the whole sign-in as a browser would,
    /// submitting the sign-in form and the service's auto-submitting form_post page.
    /// </summary>
    private async Task<SignInSteps> SignInThroughTheRelyingPartyAsync(HttpClient browser)
    {
        var authorize = Redirect(await browser.GetAsync(new Uri(_rpAddress, "/me")));

        // The service has no session yet: its sign-in page.
        var login = Redirect(await browser.GetAsync(authorize));
        var loginHtml = await browser.GetStringAsync(login);
        var posted = await browser.PostAsync(login, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = Email,
            ["Password"] = Password,
            ["ReturnUrl"] = WebUtility.HtmlDecode(OidcFlow.Hidden(loginHtml, "ReturnUrl")),
            ["__RequestVerificationToken"] = OidcFlow.Hidden(loginHtml, "__RequestVerificationToken"),
        }));

        // Back to authorize, which answers with the auto-submitting form_post page; a browser would submit it.
        var formPostPage = await browser.GetAsync(Redirect(posted));
        var formPostHtml = await formPostPage.Content.ReadAsStringAsync();
        Assert.True(formPostPage.StatusCode == HttpStatusCode.OK, formPostHtml);
        var (action, fields) = ParseForm(formPostHtml);
        var afterCallback = Redirect(await browser.PostAsync(action, new FormUrlEncodedContent(fields)));

        var me = await browser.GetAsync(afterCallback);
        return new SignInSteps(authorize, login, action, fields, afterCallback, me);
    }

    private sealed record SignInSteps(Uri Authorize, Uri Login, Uri FormPostAction, Dictionary<string, string> FormPostFields, Uri AfterCallback, HttpResponseMessage Me);

    private WebApplication BuildRelyingParty(string authority)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Development", ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new XunitLoggerProvider(() => output));
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider();
        builder.Services.AddAuthorization();
        builder.Services.AddAuthentication(options =>
            {
                options.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                options.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
            })
            .AddCookie()
            .AddOpenIdConnect(options =>
            {
                options.Authority = authority;
                options.ClientId = ClientId;
                options.ClientSecret = _clientSecret;
                options.ResponseType = "code";
                options.UsePkce = true;
                options.RequireHttpsMetadata = false;
                options.SaveTokens = true;
                options.GetClaimsFromUserInfoEndpoint = true;
                options.CallbackPath = "/signin-oidc";
                options.Scope.Clear();
                options.Scope.Add("openid");
                options.Scope.Add("profile");
                options.Scope.Add("email");
                // Plain http on loopback: the correlation and nonce cookies are Secure by default.
                options.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                options.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            });

        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/me", async (HttpContext context) =>
        {
            var user = context.User;
            return Results.Json(new
            {
                email = user.FindFirstValue(ClaimTypes.Email) ?? user.FindFirstValue("email"),
                name = user.FindFirstValue("name") ?? user.FindFirstValue(ClaimTypes.Name),
                hasAccessToken = await context.GetTokenAsync("access_token") is not null,
                hasIdToken = await context.GetTokenAsync("id_token") is not null,
            });
        }).RequireAuthorization();
        app.MapGet("/logout", () => Results.SignOut(
            new AuthenticationProperties { RedirectUri = "/signed-out" },
            [CookieAuthenticationDefaults.AuthenticationScheme, OpenIdConnectDefaults.AuthenticationScheme]));
        app.MapGet("/signed-out", () => "Signed out.");
        return app;
    }

    private static HttpClient NewBrowser() => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() });

    private static Uri Redirect(HttpResponseMessage response)
    {
        Assert.True(response.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther,
            $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: expected a redirect, got {(int)response.StatusCode}: {response.Content.ReadAsStringAsync().Result}");
        var location = response.Headers.Location!;
        return location.IsAbsoluteUri ? location : new Uri(response.RequestMessage!.RequestUri!, location);
    }

    /// <summary>The action and fields of the (only) form of an auto-submitting form_post page.</summary>
    private static (Uri Action, Dictionary<string, string> Fields) ParseForm(string html)
    {
        var form = FormTag().Match(html);
        Assert.True(form.Success, "No form with an action in the authorize response: " + html);
        var fields = InputTag().Matches(html).ToDictionary(
            m => WebUtility.HtmlDecode(m.Groups["name"].Value), m => WebUtility.HtmlDecode(m.Groups["value"].Value));
        return (new Uri(WebUtility.HtmlDecode(form.Groups["action"].Value)), fields);
    }

    [GeneratedRegex("<form[^>]*action=\"(?<action>[^\"]+)\"", RegexOptions.IgnoreCase)]
    private static partial Regex FormTag();

    [GeneratedRegex("<input[^>]*name=\"(?<name>[^\"]+)\"[^>]*value=\"(?<value>[^\"]*)\"", RegexOptions.IgnoreCase)]
    private static partial Regex InputTag();
}
