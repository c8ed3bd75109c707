namespace IdentityService.SignIn;

/// <summary>
/// Keeps redirects after sign-in, consent and sign-out inside the current tenant, and local as ASP.NET Core's
/// <c>LocalRedirect</c> requires (no control character: a tab or a line break in one made that redirect throw).
/// </summary>
public static class ReturnUrls
{
    public static string Sanitize(HttpRequest request, string? returnUrl)
    {
        var home = request.PathBase.HasValue ? request.PathBase.Value! + "/" : "/";
        if (string.IsNullOrEmpty(returnUrl) || !returnUrl.StartsWith('/') || returnUrl.StartsWith("//", StringComparison.Ordinal)
            || returnUrl.StartsWith("/\\", StringComparison.Ordinal) || returnUrl.Contains('\\') || returnUrl.Any(char.IsControl))
        {
            return home;
        }

        // Only this tenant's own paths: /t/acme/... never sends a person to /t/other/..., nor does /t/acme/../other/
        // (a browser resolves dot segments, written plain or percent-encoded, before it asks).
        return returnUrl.StartsWith(home, StringComparison.Ordinal) && !HasDotSegment(returnUrl) ? returnUrl : home;
    }

    private static bool HasDotSegment(string url)
    {
        var end = url.IndexOfAny(['?', '#']);
        var path = Uri.UnescapeDataString(end < 0 ? url : url[..end]);
        return path.Split('/').Any(segment => segment is "." or "..");
    }

    /// <summary>The tenant's sign-in page, coming back to the current page (its path, without its query) once signed in.</summary>
    public static string SignInHere(HttpRequest request) => SignInThenBackTo(request, request.PathBase + request.Path);

    /// <summary>The tenant's sign-in page, coming back to <paramref name="returnUrl"/> (a path of this tenant's) once signed in.</summary>
    public static string SignInThenBackTo(HttpRequest request, string returnUrl) =>
        $"{request.PathBase}/login?ReturnUrl={Uri.EscapeDataString(returnUrl)}";
}
