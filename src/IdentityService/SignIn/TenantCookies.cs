namespace IdentityService.SignIn;

/// <summary>The options of the cookies the sign-in pages set: HTTP only, secure over HTTPS, and scoped to the tenant's path.</summary>
public static class TenantCookies
{
    public static CookieOptions Options(HttpRequest request, SameSiteMode sameSite, DateTimeOffset? expires = null) => new()
    {
        HttpOnly = true,
        Secure = request.IsHttps,
        SameSite = sameSite,
        Path = Path(request),
        Expires = expires,
        IsEssential = true,
    };

    /// <summary>The tenant's path (<c>/t/{tenant}</c>), so one tenant's cookies never reach another's pages.</summary>
    public static string Path(HttpRequest request) => request.PathBase.HasValue ? request.PathBase.Value! : "/";
}
