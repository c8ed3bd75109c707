using System.Text.Json;
using IdentityService.Audit;

namespace IdentityService.Pipeline;

/// <summary>Writes sign-in attempts to the attempt's tenant's audit log, with what each step decided.</summary>
public sealed class SignInLog(AuditLog log)
{
    /// <remarks>The attempt is written even when the person gave up: the request's cancellation is not used.</remarks>
    public Task WriteAsync(SignInContext context, SignInResult result)
    {
        var outcome = result.Outcome switch
        {
            StepOutcome.Continue => "succeeded",
            StepOutcome.Challenge => "challenged",
            _ => "failed",
        };
        return log.WriteAsync(context.Tenant, new AuditEvent
        {
            Type = "signin." + outcome,
            Outcome = outcome,
            Reason = result.Reason,
            DecidedBy = result.DecidedBy,
            Identifier = Truncate(context.Email, 256),
            UserId = context.User?.Id,
            Ip = context.Ip.ToString(),
            Country = context.Country,
            UserAgent = Truncate(context.UserAgent, 512),
            ClientId = Truncate(context.ClientId, 100),
            Trace = JsonSerializer.Serialize(context.Trace, AuditLog.Json),
        });
    }

    private static string? Truncate(string? value, int max) => value is null || value.Length <= max ? value : value[..max];
}
