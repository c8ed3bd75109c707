namespace IdentityService.Audit;

/// <summary>User agents as the audit log keeps them, named for a person: the recent-activity page, the new-device mail.</summary>
public static class UserAgents
{
    /// <summary>A user agent shortened to what a person recognises: the browser and the system, when they can be told.</summary>
    public static string? Describe(string? userAgent)
    {
        if (string.IsNullOrEmpty(userAgent))
        {
            return null;
        }

        string? Find(params (string Token, string Name)[] candidates) =>
            candidates.FirstOrDefault(c => userAgent.Contains(c.Token, StringComparison.Ordinal)).Name;

        var browser = Find(("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"));
        var system = Find(("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"));
        return browser is null && system is null
            ? (userAgent.Length > 60 ? userAgent[..60] + "…" : userAgent)
            : string.Join(" on ", new[] { browser, system }.Where(p => p is not null));
    }
}
