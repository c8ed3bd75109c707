using System.Net;
using System.Text.RegularExpressions;

namespace IdentityService.Tests.Infrastructure;

/// <summary>Posting a page's form as a browser does, without a browser.</summary>
public static class PageForms
{
    /// <summary>
    /// Gets the page's form (for its anti-forgery token; <paramref name="formPage"/> when the form is elsewhere) and
    /// posts it with the fields, and with the token of a link's <c>?token=</c> as the form carries it.
    /// </summary>
    public static async Task<string> PostAsync(HttpClient browser, string path, Dictionary<string, string> fields, string? formPage = null)
    {
        var html = await browser.GetStringAsync(formPage ?? path);
        fields["__RequestVerificationToken"] = SignInPage.AntiForgeryToken(html);
        var token = Regex.Match(path, "[?&]token=([^&]+)");
        if (token.Success)
        {
            fields["Token"] = Uri.UnescapeDataString(token.Groups[1].Value);
        }

        // The link's token goes in the body, as the page's form carries it; the rest of the query (a handler) stays.
        var target = Regex.Replace(path, "([?&])token=[^&]*&?", "$1").TrimEnd('?', '&');
        var response = await browser.PostAsync(target, new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>A page without its anti-forgery token, which differs on every answer.</summary>
    public static string Strip(string html) => SignInPage.AntiForgeryToken(html) is { Length: > 0 } token ? html.Replace(token, "") : html;
}
