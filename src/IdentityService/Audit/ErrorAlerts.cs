using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Audit;

/// <summary>
/// Tells a tenant when its endpoints and pages answer too many errors: the responses under <c>/t/{tenant}</c>
/// whose status is one of the policy's <c>alerts.statuses</c> are counted per minute (in the protection store:
/// shared by every replica with Redis), and the one that reaches <c>alerts.errorsPerMinute</c> writes an
/// <c>alert.errors</c> event to the tenant's audit log, which its webhooks receive. One alert per minute at most.
/// </summary>
/// <remarks>
/// Placed right after tenant resolution, so that it sees the rate limiter's 429s too. A successful response costs
/// a status check; only error responses read the policy (from memory) and count.
/// </remarks>
internal sealed class ErrorAlerts(RequestDelegate next, PolicyStore policies, IProtectionStore counters, AuditLog audit, ILogger<ErrorAlerts> logger)
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A device polling the token endpoint while its person has not answered yet (RFC 8628 3.5): a 400 by the protocol,
    /// every few seconds for minutes per device, and no error of anyone's.
    /// </summary>
    private static bool IsDevicePolling(HttpContext context) =>
        context.GetOpenIddictServerResponse()?.Error is Errors.AuthorizationPending or Errors.SlowDown;

    public async Task InvokeAsync(HttpContext context, TenantContext tenantContext)
    {
        await next(context);
        var status = context.Response.StatusCode;
        if (status < 400 || tenantContext.Tenant is not { } tenant || IsDevicePolling(context))
        {
            return;
        }

        try
        {
            var alerts = (await policies.GetAsync(tenant, CancellationToken.None)).Alerts;
            if (alerts.ErrorsPerMinute == 0 || !alerts.Statuses.Contains(status)
                || await counters.IncrementAsync(tenant.Id, "alert:errors", Window, CancellationToken.None) != alerts.ErrorsPerMinute)
            {
                return;
            }

            await audit.WriteAsync(tenant, new AuditEvent
            {
                Type = AuditEventTypes.ErrorsAlert,
                Outcome = "failed",
                Details = System.Text.Json.JsonSerializer.Serialize(
                    new { errors = alerts.ErrorsPerMinute, windowSeconds = (int)Window.TotalSeconds, statuses = alerts.Statuses, lastStatus = status, lastPath = context.Request.Path.Value },
                    AuditLog.Json),
            });
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The answer is given already: counting must not turn it into another error.
            logger.LogError(e, "Counting an error response of tenant {Tenant} for its alerts failed.", tenant.Id);
        }
    }
}
