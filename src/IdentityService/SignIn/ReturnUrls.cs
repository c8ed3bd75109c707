namespace IdentityService.SignIn;

/// <summary>Keeps redirects after sign-in, consent and sign-out inside the current tenant.</summary>
public static class ReturnUrls
{
    public static string Sanitize(HttpRequest request, string? returnUrl)
    {
        var home = request.PathBase.HasValue ? request.PathBase.Value! + "/" : "/";
        if (string.IsNullOrEmpty(returnUrl) || !returnUrl.StartsWith('/') || returnUrl.StartsWith("//", StringComparison.Ordinal)
            || returnUrl.StartsWith("/\\", StringComparison.Ordinal) || returnUrl.Contains('\\'))
        {
            return home;
        }

        // Only this tenant's own paths: /t/acme/... never sends a person to /t/other/...
        return returnUrl.StartsWith(home, StringComparison.Ordinal) ? returnUrl : home;
    }
}
