using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LoadGen;

/// <summary>What differs between the service and the peer: paths and the sign-in page.</summary>
internal sealed class Target
{
    public const string RedirectUri = "http://127.0.0.1:9/cb";

    public Target(string name, string baseUrl, int pid, bool isOurs, string? forwardedProto = null)
    {
        Name = name;
        Pid = pid;
        IsOurs = isOurs;
        Http = new(new SocketsHttpHandler
        {
            UseCookies = false,
            AllowAutoRedirect = false,
            MaxConnectionsPerServer = 1024,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
        })
        { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(60) };
        if (forwardedProto is { Length: > 0 })
        {
            // As a TLS-terminating proxy in front of the service says (the service trusts it: ForwardedHeaders:KnownProxies).
            Http.DefaultRequestHeaders.Add("X-Forwarded-Proto", forwardedProto);
        }
    }

    public string Name { get; }

    public int Pid { get; }

    public bool IsOurs { get; }

    public HttpClient Http { get; }

    public string Prefix(string tenant) => IsOurs ? $"/t/{tenant}" : "";

    public string TokenPath(string tenant) => IsOurs ? $"/t/{tenant}/connect/token" : "/token";

    public string DiscoveryPath(string tenant) => $"{Prefix(tenant)}/.well-known/openid-configuration";

    public string JwksPath(string tenant) => IsOurs ? $"/t/{tenant}/.well-known/jwks" : "/jwks";

    public string AuthorizePath(string tenant) => IsOurs ? $"/t/{tenant}/connect/authorize" : "/auth";
}

/// <summary>A browser's cookie jar, kept by hand so that every sign-in starts without a session.</summary>
internal sealed class Jar
{
    private readonly Dictionary<string, string> _cookies = new(StringComparer.Ordinal);

    public void Add(HttpRequestMessage request)
    {
        if (_cookies.Count > 0)
        {
            request.Headers.Add("Cookie", string.Join("; ", _cookies.Select(c => c.Key + "=" + c.Value)));
        }
    }

    public void Take(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Set-Cookie", out var values))
        {
            return;
        }

        foreach (var header in values)
        {
            var first = header.Split(';', 2)[0];
            var eq = first.IndexOf('=');
            if (eq <= 0)
            {
                continue;
            }

            var name = first[..eq].Trim();
            var value = first[(eq + 1)..].Trim();
            if (value.Length == 0 || header.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase) || header.Contains("max-age=0", StringComparison.OrdinalIgnoreCase))
            {
                _cookies.Remove(name);
            }
            else
            {
                _cookies[name] = value;
            }
        }
    }
}

internal static partial class Flows
{
    public const string Password = "correct horse battery staple";
    public const string ClientSecret = "bench-secret-0123456789abcdef";

    public static async Task<JsonElement> PostFormAsync(HttpClient http, string path, IEnumerable<KeyValuePair<string, string>> form)
    {
        using var response = await http.PostAsync(path, new FormUrlEncodedContent(form));
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"{(int)response.StatusCode} from POST {path}: {Cut(body)}");
        }

        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static async Task GetOkAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path, HttpCompletionOption.ResponseContentRead);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"{(int)response.StatusCode} from GET {path}");
        }
    }

    public static Task<JsonElement> ClientCredentialsAsync(Target target, string tenant, string clientId) =>
        PostFormAsync(target.Http, target.TokenPath(tenant), [
            new("grant_type", "client_credentials"), new("client_id", clientId), new("client_secret", ClientSecret)]);

    public static Task<JsonElement> RefreshAsync(Target target, string tenant, string clientId, string refreshToken) =>
        PostFormAsync(target.Http, target.TokenPath(tenant), [
            new("grant_type", "refresh_token"), new("refresh_token", refreshToken), new("client_id", clientId)]);

    /// <summary>
    /// A complete sign-in without a browser: authorize, the sign-in page, the password posted, back to
    /// authorize, the code, the token exchange. Returns the token response; 6 requests.
    /// </summary>
    public static async Task<JsonElement> SignInAsync(Target target, string tenant, string clientId, string email, Action<string>? step = null)
    {
        var jar = new Jar();
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var query = new Dictionary<string, string>
        {
            ["client_id"] = clientId,
            ["redirect_uri"] = Target.RedirectUri,
            ["response_type"] = "code",
            ["scope"] = "openid offline_access",
            ["state"] = Base64Url(RandomNumberGenerator.GetBytes(12)),
            ["nonce"] = Base64Url(RandomNumberGenerator.GetBytes(12)),
            ["code_challenge"] = challenge,
            ["code_challenge_method"] = "S256",
        };
        if (!target.IsOurs)
        {
            // oidc-provider grants offline_access only with prompt=consent.
            query["prompt"] = "consent";
        }

        var authorize = target.AuthorizePath(tenant) + "?" + string.Join("&", query.Select(p => p.Key + "=" + Uri.EscapeDataString(p.Value)));
        var location = await RedirectAsync(target, jar, HttpMethod.Get, authorize, null);
        step?.Invoke("1 authorization request");
        using (var page = await SendAsync(target, jar, HttpMethod.Get, location, null))
        {
            var html = await page.Content.ReadAsStringAsync();
            if (page.StatusCode != HttpStatusCode.OK)
            {
                throw new HttpRequestException($"{(int)page.StatusCode} from the sign-in page {location}");
            }

            step?.Invoke("2 sign-in page");
            List<KeyValuePair<string, string>> form = target.IsOurs
                ? [new("Email", email), new("Password", Password),
                   new("ReturnUrl", WebUtility.HtmlDecode(Hidden(html, "ReturnUrl"))),
                   new("__RequestVerificationToken", Hidden(html, "__RequestVerificationToken"))]
                : [new("email", email), new("password", Password)];
            location = await RedirectAsync(target, jar, HttpMethod.Post, location, new FormUrlEncodedContent(form));
            step?.Invoke("3 password POST");
        }

        location = await RedirectAsync(target, jar, HttpMethod.Get, location, null);
        step?.Invoke("4 authorization request, signed in (code)");
        if (!location.StartsWith(Target.RedirectUri, StringComparison.Ordinal))
        {
            throw new HttpRequestException($"Expected the redirect URI with a code, got {location}");
        }

        var code = CodeParameter().Match(location);
        if (!code.Success)
        {
            throw new HttpRequestException($"No code in {location}");
        }

        var tokens = await PostFormAsync(target.Http, target.TokenPath(tenant), [
            new("grant_type", "authorization_code"), new("code", Uri.UnescapeDataString(code.Groups[1].Value)),
            new("redirect_uri", Target.RedirectUri), new("client_id", clientId), new("code_verifier", verifier)]);
        step?.Invoke("5 code exchange");
        return tokens;
    }

    private static async Task<HttpResponseMessage> SendAsync(Target target, Jar jar, HttpMethod method, string path, HttpContent? content)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        jar.Add(request);
        var response = await target.Http.SendAsync(request);
        jar.Take(response);
        return response;
    }

    private static async Task<string> RedirectAsync(Target target, Jar jar, HttpMethod method, string path, HttpContent? content)
    {
        using var response = await SendAsync(target, jar, method, path, content);
        if ((int)response.StatusCode is not (302 or 303) || response.Headers.Location is not { } location)
        {
            throw new HttpRequestException($"Expected a redirect from {method} {Cut(path)}, got {(int)response.StatusCode}: {Cut(await response.Content.ReadAsStringAsync())}");
        }

        // An absolute redirect to the target itself (with its public https origin behind the proxy, or its loopback one) is followed by path.
        if (!location.IsAbsoluteUri)
        {
            return location.OriginalString;
        }

        var value = location.ToString();
        return location.Authority == target.Http.BaseAddress!.Authority ? location.PathAndQuery : value;
    }

    private static string Hidden(string html, string name)
    {
        var match = Regex.Match(html, $"<input[^>]*name=\"{Regex.Escape(name)}\"[^>]*value=\"([^\"]*)\"");
        return match.Success ? match.Groups[1].Value : throw new HttpRequestException($"No hidden field {name} in the sign-in page.");
    }

    [GeneratedRegex("[?&]code=([^&]+)")]
    private static partial Regex CodeParameter();

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Cut(string s) => s.Length > 300 ? s[..300] + "..." : s;

    public static AuthenticationHeaderValue Basic(string id, string secret) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.EscapeDataString(id) + ":" + Uri.EscapeDataString(secret))));
}
