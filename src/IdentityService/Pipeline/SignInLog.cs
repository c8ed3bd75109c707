using System.Text.Json;
using IdentityService.Data;
using IdentityService.Tenancy;

namespace IdentityService.Pipeline;

/// <summary>Writes sign-in attempts to the append-only log, in the attempt's tenant.</summary>
public sealed class SignInLog(IServiceScopeFactory scopes, TimeProvider time, ILogger<SignInLog> logger)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <remarks>The attempt is written even when the person gave up: the request's cancellation is not used.</remarks>
    public async Task WriteAsync(SignInContext context, SignInResult result)
    {
        using var scope = scopes.CreateTenantScope(context.Tenant);
        var db = scope.ServiceProvider.GetRequiredService<IdentityDb>();
        db.Add(new SignInEvent
        {
            Id = Guid.NewGuid(),
            Time = time.GetUtcNow(),
            Outcome = result.Outcome switch
            {
                StepOutcome.Continue => "succeeded",
                StepOutcome.Challenge => "challenged",
                _ => "failed",
            },
            Reason = result.Reason,
            DecidedBy = result.DecidedBy,
            Identifier = Truncate(context.Email, 256)!,
            UserId = context.User?.Id,
            Ip = context.Ip.ToString(),
            Country = context.Country,
            UserAgent = Truncate(context.UserAgent, 512),
            ClientId = Truncate(context.ClientId, 100),
            Trace = JsonSerializer.Serialize(context.Trace, Json),
        });
        try
        {
            await db.SaveChangesAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is Microsoft.EntityFrameworkCore.DbUpdateException or InvalidOperationException)
        {
            logger.LogError(e, "Writing a sign-in attempt of tenant {Tenant} to the sign-in log failed.", context.Tenant.Id);
        }
    }

    private static string? Truncate(string? value, int max) => value is null || value.Length <= max ? value : value[..max];
}
