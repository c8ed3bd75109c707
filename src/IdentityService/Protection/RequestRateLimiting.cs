using System.Net.Http.Headers;
using System.Text;
using IdentityService.Management;
using IdentityService.Oidc;
using IdentityService.Policy;
using IdentityService.Tenancy;

namespace IdentityService.Protection;

/// <summary>
/// The request rate limits of a tenant's policy (<c>rateLimits</c>): every request of a tenant counts
/// against <c>requestsPerTenantPerSecond</c>, and each client's token (and device and pushed authorization) requests against
/// <c>tokenRequestsPerClientPerSecond</c>. The token endpoint and the management API answer 429 with
/// <c>Retry-After</c> past a limit. (The sign-in page's per-IP limit is a step of the sign-in pipeline,
/// so that a refusal there looks like any other.) Counters live in the protection store: shared through
/// Redis when it is configured.
/// </summary>
internal sealed class RequestRateLimiting(RequestDelegate next, IProtectionStore store, PolicyStore policies, TenantDirectory tenants, TimeProvider time, ILogger<RequestRateLimiting> logger)
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    public async Task InvokeAsync(HttpContext context)
    {
        var tenant = context.Features.Get<TenantOidcState>()?.Tenant ?? await ManagedTenantAsync(context);
        if (tenant is null)
        {
            await next(context);
            return;
        }

        if (await IsOverLimitAsync(context, tenant))
        {
            await RefuseAsync(context);
            return;
        }

        await next(context);
    }

    private async Task<bool> IsOverLimitAsync(HttpContext context, Tenant tenant)
    {
        var limits = (await policies.GetAsync(tenant, context.RequestAborted)).RateLimits;
        try
        {
            if (await store.IncrementAsync(tenant.Id, "rl:tenant", Second, context.RequestAborted) > limits.RequestsPerTenantPerSecond)
            {
                return true;
            }

            return HttpMethods.IsPost(context.Request.Method) && IsClientRequest(context.Request.Path)
                && await ClientIdAsync(context) is { } clientId
                && await store.IncrementAsync(tenant.Id, $"rl:token:{clientId}", Second, context.RequestAborted) > limits.TokenRequestsPerClientPerSecond;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Rate limits protect capacity: with their shared store (Redis) down, requests go on unlimited rather
            // than all failing. The sign-in protections, which guard accounts, fail closed instead.
            logger.LogWarning(e, "The rate-limit store is unavailable; tenant {Tenant} is not rate limited meanwhile.", tenant.Id);
            return false;
        }
    }

    /// <summary>
    /// The token, device authorization and pushed authorization endpoints: what a client's own requests count against.
    /// Named as OpenIddict finds them: in any case, with one more trailing slash.
    /// </summary>
    private static bool IsClientRequest(PathString path) =>
        path.Value is { Length: > 0 } value && (value[^1] == '/' ? value[..^1] : value) is var endpoint
        && (endpoint.Equals("/connect/token", StringComparison.OrdinalIgnoreCase) || endpoint.Equals("/connect/device", StringComparison.OrdinalIgnoreCase)
            || endpoint.Equals("/connect/par", StringComparison.OrdinalIgnoreCase));

    /// <summary>The tenant a management request addresses (<c>/api/v1/tenants/{tenant}/...</c>, in any case, as the API's routes take it).</summary>
    private async Task<Tenant?> ManagedTenantAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/api/v1/tenants", StringComparison.OrdinalIgnoreCase, out var rest) || !rest.HasValue)
        {
            return null;
        }

        var segment = rest.Value!.Split('/', 3, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return TenantIds.IsValid(segment) ? await tenants.FindAsync(segment!, context.RequestAborted) : null;
    }

    private static async Task<string?> ClientIdAsync(HttpContext context)
    {
        if (AuthenticationHeaderValue.TryParse(context.Request.Headers.Authorization, out var header)
            && string.Equals(header.Scheme, "Basic", StringComparison.OrdinalIgnoreCase) && header.Parameter is { Length: < 4096 } basic)
        {
            try
            {
                var pair = Encoding.UTF8.GetString(Convert.FromBase64String(basic));
                var colon = pair.IndexOf(':');
                return colon > 0 ? Uri.UnescapeDataString(pair[..colon]) : null;
            }
            catch (FormatException)
            {
                return null;
            }
        }

        if (!context.Request.HasFormContentType)
        {
            return null;
        }

        // Read once for the request: OpenIddict reads the same form afterwards, and one that cannot be read is
        // answered after this (FormBodies).
        var form = await FormBodies.ReadAsync(context);
        var clientId = form?["client_id"].ToString();
        if (string.IsNullOrEmpty(clientId) && form?["client_assertion"].ToString() is { Length: > 0 and <= 8192 } assertion)
        {
            // A client authenticating with an assertion alone is named by its (not yet verified) issuer, as one
            // that sends client_id with a wrong secret is by that client_id.
            clientId = AssertionIssuer(assertion);
        }

        return clientId?.Length is > 0 and <= 200 ? clientId : null;
    }

    private static string? AssertionIssuer(string assertion)
    {
        try
        {
            return new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(assertion).Issuer;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private Task RefuseAsync(HttpContext context)
    {
        var now = time.GetUtcNow();
        var retryAfter = Math.Max(1, (int)Math.Ceiling(1 - (now.ToUnixTimeMilliseconds() % 1000) / 1000.0));
        context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        context.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return context.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal)
            ? Problems.Status(StatusCodes.Status429TooManyRequests, "rate_limited", "Too many requests: slow down.").ExecuteAsync(context)
            : context.Response.WriteAsJsonAsync(new Dictionary<string, string>
            {
                ["error"] = "temporarily_unavailable",
                ["error_description"] = "Too many requests: retry after the time in Retry-After.",
            });
    }
}
