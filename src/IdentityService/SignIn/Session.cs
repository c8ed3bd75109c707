using System.Globalization;
using System.Security.Claims;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace IdentityService.SignIn;

/// <summary>
/// The single sign-on cookie of a tenant. Its path is the tenant's path base (<c>/t/{tenant}</c>), so a
/// browser never sends tenant A's cookie to tenant B; the principal also carries its tenant, checked on
/// every read, so a cookie moved by hand to another tenant is refused.
/// </summary>
public static class Session
{
    public const string Scheme = "IdentityService.Session";
    public const string TenantClaim = "tenant";
    public const string AuthTimeClaim = "auth_time";
    public const string AmrClaim = "amr";

    /// <summary>
    /// The session's id (OpenID Connect's <c>sid</c>): 128 random bits made at the sign-in, kept when the session is
    /// renewed. ID tokens carry it, and each sign-in with a client records it, so that ending the session tells that
    /// session's clients (back-channel logout) and no other.
    /// </summary>
    public const string SessionIdClaim = "sid";

    /// <summary>Marks a sign-in that renews a session (same sign-in, new stamp): its issue and expiry times are kept.</summary>
    public const string RenewedItem = ".renewed";

    /// <summary>When the session ends whatever its activity (its lifetime from the sign-in), in UTC ticks.</summary>
    private const string EndsItem = ".ends";

    /// <summary>When the session was last used (within a minute), in UTC ticks, for the tenant's idle timeout.</summary>
    private const string SeenItem = ".seen";

    /// <summary>The account's security stamp when the session began: a password set since (reset or by an admin) ends it.</summary>
    public const string StampClaim = "stamp";

    public static IServiceCollection AddSessionCookie(this IServiceCollection services)
    {
        services.AddAuthentication(Scheme).AddCookie(Scheme, options =>
        {
            options.Cookie.Name = ".IdentityService.Session";
            options.Cookie.HttpOnly = true;
            options.Cookie.SameSite = SameSiteMode.Lax;
            options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            // Path left unset: the cookie handler then uses the request's path base, the tenant's prefix.
            options.LoginPath = "/login";
            options.LogoutPath = "/logout";
            options.AccessDeniedPath = "/error";
            options.SlidingExpiration = false;
            options.Events.OnValidatePrincipal = async context =>
            {
                var tenant = context.HttpContext.RequestServices.GetRequiredService<TenantContext>().Tenant;
                if (tenant is null || context.Principal?.FindFirstValue(TenantClaim) != tenant.Id)
                {
                    context.RejectPrincipal();
                    return;
                }

                var now = context.HttpContext.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
                var items = context.Properties.Items;
                if (Ticks(items, EndsItem) is { } ends && now >= ends)
                {
                    context.RejectPrincipal();
                    return;
                }

                if (tenant.SessionIdleTimeoutSeconds > 0)
                {
                    var idle = TimeSpan.FromSeconds(tenant.SessionIdleTimeoutSeconds);
                    var seen = Ticks(items, SeenItem) ?? context.Properties.IssuedUtc ?? now;
                    if (now - seen > idle)
                    {
                        context.RejectPrincipal();
                        await context.HttpContext.SignOutAsync(Scheme);
                        return;
                    }

                    // Activity is written back at most once a minute (a tenth of the timeout if that is shorter).
                    if (now - seen > TimeSpan.FromTicks(Math.Min(TimeSpan.TicksPerMinute, idle.Ticks / 10)))
                    {
                        items[SeenItem] = now.UtcTicks.ToString(CultureInfo.InvariantCulture);
                        context.ShouldRenew = true;
                    }
                }
            };
            options.Events.OnSigningIn = context =>
            {
                var tenant = context.HttpContext.RequestServices.GetRequiredService<TenantContext>().Required;
                var now = context.HttpContext.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
                // A renewed session (a new stamp for the same sign-in) keeps the times it was given.
                if (!context.Properties.Items.ContainsKey(RenewedItem))
                {
                    context.Properties.IssuedUtc = now;
                    context.Properties.ExpiresUtc = now.AddSeconds(tenant.SessionLifetimeSeconds);
                }

                // The end is kept apart from the cookie's expiry, which the renewals of an idle timeout move on.
                context.Properties.Items.TryAdd(EndsItem, (context.Properties.ExpiresUtc ?? now.AddSeconds(tenant.SessionLifetimeSeconds)).UtcTicks.ToString(CultureInfo.InvariantCulture));
                context.Properties.Items[SeenItem] = now.UtcTicks.ToString(CultureInfo.InvariantCulture);
                return Task.CompletedTask;
            };
        });
        // The cookie handler checks a session's expiry with the service's clock, as everything else does.
        services.AddOptions<CookieAuthenticationOptions>(Scheme).Configure<TimeProvider>((options, time) => options.TimeProvider = time);
        return services;
    }

    private static DateTimeOffset? Ticks(IDictionary<string, string?> items, string key) =>
        items.TryGetValue(key, out var value) && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            ? new DateTimeOffset(ticks, TimeSpan.Zero)
            : null;

    /// <summary>The session principal of a user who just proved who they are.</summary>
    /// <param name="methods">How they proved it, as RFC 8176 <c>amr</c> values (<c>pwd</c>; with a second factor <c>otp</c> or <c>sms</c>, and <c>mfa</c>).</param>
    public static ClaimsPrincipal CreatePrincipal(Users.AppUser user, string tenantId, DateTimeOffset authTime, params string[] methods) =>
        CreatePrincipal(user, tenantId, authTime, methods, NewSessionId());

    /// <summary>The principal of a session renewed for the same sign-in (a new stamp): its sign-in time, methods and id kept.</summary>
    public static ClaimsPrincipal Renew(ClaimsPrincipal session, Users.AppUser user, string tenantId) =>
        CreatePrincipal(user, tenantId, session.GetAuthTime() ?? DateTimeOffset.UnixEpoch,
            [.. session.FindAll(AmrClaim).Select(c => c.Value)], session.FindFirstValue(SessionIdClaim) ?? NewSessionId());

    private static string NewSessionId() => Microsoft.AspNetCore.WebUtilities.WebEncoders.Base64UrlEncode(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    private static ClaimsPrincipal CreatePrincipal(Users.AppUser user, string tenantId, DateTimeOffset authTime, string[] methods, string sessionId)
    {
        var identity = new ClaimsIdentity(Scheme, "email", "role");
        identity.AddClaim(new Claim("sub", user.Id.ToString()));
        identity.AddClaim(new Claim(TenantClaim, tenantId));
        identity.AddClaim(new Claim(SessionIdClaim, sessionId));
        identity.AddClaim(new Claim("email", user.Email ?? ""));
        identity.AddClaim(new Claim(StampClaim, user.SecurityStamp ?? ""));
        identity.AddClaim(new Claim(AuthTimeClaim, authTime.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)));
        foreach (var method in methods)
        {
            identity.AddClaim(new Claim(AmrClaim, method));
        }

        return new ClaimsPrincipal(identity);
    }

    /// <summary>
    /// Whether a session still stands for the account: its password was not set since the session began (the
    /// account's security stamp is the one the session holds). A session from before stamps were kept has none.
    /// </summary>
    public static bool IsCurrentFor(this ClaimsPrincipal session, Users.AppUser user) =>
        session.FindFirstValue(StampClaim) is { } stamp && stamp == (user.SecurityStamp ?? "");

    public static DateTimeOffset? GetAuthTime(this ClaimsPrincipal principal) =>
        long.TryParse(principal.FindFirstValue(AuthTimeClaim), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;

    /// <summary>The account the current request's session stands for, or null (no session, or one the account's new password ended).</summary>
    public static async Task<Users.AppUser?> SignedInAccountAsync(this HttpContext context, Microsoft.AspNetCore.Identity.UserManager<Users.AppUser> users)
    {
        var session = await context.GetSessionAsync();
        var account = session?.FindFirstValue("sub") is { } id ? await users.FindByIdAsync(id) : null;
        return account is not null && session!.IsCurrentFor(account) ? account : null;
    }

    /// <summary>
    /// Ends the request's session (the person signed out), tells the clients signed in with it, whose own sessions end
    /// too (<see cref="Oidc.BackchannelLogout"/>), ends its sign-ins made without offline access
    /// (<see cref="Oidc.TenantAuthorizationManager.EndSessionAsync"/>), and records it in the audit log with the clients
    /// told: even if the browser goes before the answer.
    /// </summary>
    public static async Task EndSessionAsync(this HttpContext context)
    {
        var session = await context.GetSessionAsync();
        await context.SignOutAsync(Scheme);
        if (session?.FindFirstValue("sub") is not { } subject || !Guid.TryParse(subject, out var userId))
        {
            return;
        }

        var told = session.FindFirstValue(SessionIdClaim) is { } sessionId
            ? await context.RequestServices.GetRequiredService<Oidc.TenantAuthorizationManager>().EndSessionAsync(subject, sessionId, CancellationToken.None)
            : [];
        var tenant = context.RequestServices.GetRequiredService<TenantContext>().Required;
        await context.RequestServices.GetRequiredService<Audit.AuditLog>().AccountActionAsync(
            context, tenant, userId, session.FindFirstValue("email"), Audit.AuditEventTypes.UserSignedOut, new { clientsTold = told });
    }

    /// <summary>The current request's session, or null when there is none for this tenant.</summary>
    public static async Task<ClaimsPrincipal?> GetSessionAsync(this HttpContext context)
    {
        var result = await context.AuthenticateAsync(Scheme);
        return result.Succeeded ? result.Principal : null;
    }
}
