using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// Drives the authorization code + PKCE flow as a browser and a relying party would, through the real
/// pages: authorize, sign-in form with its anti-forgery token, back to authorize, code, token exchange.
/// </summary>
public sealed partial class OidcFlow(HttpClient browser, string tenant, string clientId, string? clientSecret = null)
{
    public const string RedirectUri = "https://app.example/cb";

    public string Verifier { get; } = Base64Url(RandomNumberGenerator.GetBytes(32));

    public string Scope { get; set; } = "openid profile email offline_access";

    public Dictionary<string, string> Extra { get; } = [];

    /// <summary>More fields posted with the sign-in form (such as <c>g-recaptcha-response</c>).</summary>
    public Dictionary<string, string> FormFields { get; } = [];

    public string AuthorizeUrl()
    {
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(Verifier)));
        var query = new Dictionary<string, string?>
        {
            ["client_id"] = clientId,
            ["redirect_uri"] = RedirectUri,
            ["response_type"] = "code",
            ["scope"] = Scope,
            ["state"] = "st-" + Guid.NewGuid().ToString("N"),
            ["nonce"] = "n-" + Guid.NewGuid().ToString("N"),
            ["code_challenge"] = challenge,
            ["code_challenge_method"] = "S256",
        };
        foreach (var (key, value) in Extra)
        {
            query[key] = value;
        }

        return QueryHelpers.AddQueryString($"/t/{tenant}/connect/authorize", query);
    }

    /// <summary>Whether the request's parameters are pushed first (RFC 9126), the browser then sent with the request_uri alone.</summary>
    public bool Pushed { get; set; }

    /// <summary>
    /// The authorization URL the browser opens: <see cref="AuthorizeUrl"/>, or when <see cref="Pushed"/>, its parameters
    /// pushed to the tenant's PAR endpoint (with the client's secret, if any) and the client id and request_uri it gave.
    /// </summary>
    public async Task<string> StartAsync()
    {
        var url = AuthorizeUrl();
        if (!Pushed)
        {
            return url;
        }

        var form = QueryHelpers.ParseQuery(new Uri(new Uri("http://localhost"), url).Query).ToDictionary(p => p.Key, p => p.Value.ToString());
        if (clientSecret is not null)
        {
            form["client_secret"] = clientSecret;
        }

        using var pushed = await browser.PostAsync($"/t/{tenant}/connect/par", new FormUrlEncodedContent(form));
        var body = await pushed.Content.ReadAsStringAsync();
        Assert.True(pushed.StatusCode == HttpStatusCode.Created, body);
        var requestUri = JsonDocument.Parse(body).RootElement.GetProperty("request_uri").GetString()!;
        return QueryHelpers.AddQueryString($"/t/{tenant}/connect/authorize", new Dictionary<string, string?> { ["client_id"] = clientId, ["request_uri"] = requestUri });
    }

    /// <summary>Signs in through the page when asked to and returns the code sent to the redirect URI.</summary>
    public async Task<string> GetCodeAsync(string email, string password)
    {
        var response = await browser.GetAsync(await StartAsync());
        var location = Location(response);
        if (location.AbsolutePath.EndsWith("/login", StringComparison.Ordinal))
        {
            response = await browser.GetAsync((await SignInOnPageAsync(location, email, password)).PathAndQuery);
            location = Location(response);
        }

        Assert.StartsWith(RedirectUri, location.ToString());
        var query = QueryHelpers.ParseQuery(location.Query);
        Assert.True(query.ContainsKey("code"), location.ToString());
        return query["code"].ToString();
    }

    /// <summary>Fills and posts the sign-in page the authorization endpoint sent the browser to; returns where it sends the browser back.</summary>
    public async Task<Uri> SignInOnPageAsync(Uri login, string email, string password)
    {
        var html = await browser.GetStringAsync(login.PathAndQuery);
        var form = new Dictionary<string, string>
        {
            ["Email"] = email,
            ["Password"] = password,
            ["ReturnUrl"] = WebUtility.HtmlDecode(Hidden(html, "ReturnUrl")),
            ["__RequestVerificationToken"] = Hidden(html, "__RequestVerificationToken"),
        };
        foreach (var (key, value) in FormFields)
        {
            form[key] = value;
        }

        using var posted = await browser.PostAsync(login.PathAndQuery, new FormUrlEncodedContent(form));
        if (posted.StatusCode != HttpStatusCode.Redirect)
        {
            throw new SignInRefusedException(await posted.Content.ReadAsStringAsync());
        }

        return Location(posted);
    }

    /// <summary>
    /// Answers the consent page the browser was sent to with its own form (the return URL, and the scopes when the page
    /// carries them); returns where it sends the browser back.
    /// </summary>
    public static async Task<Uri> AnswerConsentAsync(HttpClient browser, Uri consent, string page, string decision = "allow")
    {
        var fields = new Dictionary<string, string>
        {
            ["ReturnUrl"] = WebUtility.HtmlDecode(Hidden(page, "ReturnUrl")),
            ["decision"] = decision,
            ["__RequestVerificationToken"] = Hidden(page, "__RequestVerificationToken"),
        };
        if (page.Contains("name=\"Scope\"", StringComparison.Ordinal))
        {
            fields["Scope"] = WebUtility.HtmlDecode(Hidden(page, "Scope"));
        }

        using var response = await browser.PostAsync(consent.PathAndQuery, new FormUrlEncodedContent(fields));
        return Location(response);
    }

    public async Task<HttpResponseMessage> RedeemAsync(string code, string? verifier = null, string? path = null)
    {
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code,
            ["redirect_uri"] = RedirectUri,
            ["client_id"] = clientId,
            ["code_verifier"] = verifier ?? Verifier,
        };
        if (clientSecret is not null)
        {
            form["client_secret"] = clientSecret;
        }

        return await browser.PostAsync(path ?? $"/t/{tenant}/connect/token", new FormUrlEncodedContent(form));
    }

    public async Task<JsonElement> SignInAsync(string email, string password)
    {
        var response = await RedeemAsync(await GetCodeAsync(email, password));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public async Task<HttpResponseMessage> RefreshAsync(string refreshToken, string? path = null)
    {
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = refreshToken,
            ["client_id"] = clientId,
        };
        if (clientSecret is not null)
        {
            form["client_secret"] = clientSecret;
        }

        return await browser.PostAsync(path ?? $"/t/{tenant}/connect/token", new FormUrlEncodedContent(form));
    }

    /// <summary>The refresh token of a token response, which must be a success.</summary>
    public static async Task<string> RefreshTokenOfAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("refresh_token").GetString()!;
    }

    /// <summary>What the tenant's userinfo endpoint answers to an access token: 200 while it is live.</summary>
    public async Task<HttpStatusCode> UserInfoStatusAsync(string accessToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/t/{tenant}/connect/userinfo");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", accessToken);
        using var response = await browser.SendAsync(request);
        return response.StatusCode;
    }

    public static Uri Location(HttpResponseMessage response)
    {
        Assert.True(response.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther,
            $"Expected a redirect, got {(int)response.StatusCode}: {response.Content.ReadAsStringAsync().Result}");
        var location = response.Headers.Location!;
        return location.IsAbsoluteUri ? location : new Uri(new Uri("http://localhost"), location);
    }

    public static string Hidden(string html, string name)
    {
        var match = Regex.Match(html, $"<input[^>]*name=\"{Regex.Escape(name)}\"[^>]*value=\"([^\"]*)\"");
        Assert.True(match.Success, $"No hidden field {name} in the page.");
        return match.Groups[1].Value;
    }

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

public sealed class SignInRefusedException(string page) : Exception("The sign-in page refused the credentials.")
{
    public string Page { get; } = page;
}
