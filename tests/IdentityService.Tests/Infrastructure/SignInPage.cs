using System.Net;
using System.Text.RegularExpressions;

namespace IdentityService.Tests.Infrastructure;

/// <summary>Posts the sign-in form of a tenant as a browser at a given address would.</summary>
public sealed partial class SignInPage(HttpClient browser, string tenant)
{
    private string? _token;

    public sealed record Answer(HttpStatusCode Status, string Html, Uri? Location)
    {
        public bool SignedIn => Status == HttpStatusCode.Redirect;

        public bool Refused => Status == HttpStatusCode.OK && Html.Contains("Email and/or password invalid.", StringComparison.Ordinal);
    }

    public async Task<Answer> PostAsync(string? email, string? password, string ip = "203.0.113.10", IDictionary<string, string>? headers = null, IDictionary<string, string>? fields = null, string query = "")
    {
        _token ??= await TokenAsync(ip);
        var form = new Dictionary<string, string> { ["__RequestVerificationToken"] = _token };
        // A field given as null is left out of the form (to send it some other way).
        if (email is not null)
        {
            form["Email"] = email;
        }

        if (password is not null)
        {
            form["Password"] = password;
        }

        foreach (var (key, value) in fields ?? new Dictionary<string, string>())
        {
            form[key] = value;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/t/{tenant}/login{query}") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Add(TestClientIp.Header, ip);
        foreach (var (key, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(key, value);
        }

        var response = await browser.SendAsync(request);
        var answer = new Answer(response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.Location);
        if (answer.SignedIn)
        {
            // An anti-forgery token is bound to who the browser is: a signed-in browser needs a new one.
            _token = null;
        }

        return answer;
    }

    private async Task<string> TokenAsync(string ip)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/t/{tenant}/login");
        request.Headers.Add(TestClientIp.Header, ip);
        return AntiForgeryToken(await (await browser.SendAsync(request)).Content.ReadAsStringAsync());
    }

    /// <summary>The anti-forgery token of a page's form, as a browser would post it back.</summary>
    public static string AntiForgeryToken(string html) => Token().Match(html).Groups[1].Value;

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]*)\"")]
    private static partial Regex Token();
}
