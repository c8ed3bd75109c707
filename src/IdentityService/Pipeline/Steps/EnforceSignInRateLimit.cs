using IdentityService.Protection;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// First, before anything costs: at most <c>rateLimits.signInPerIpPerMinute</c> attempts per IP (an IPv6 address's /64) and tenant.
/// Past it the attempt is denied like any other, and no password is checked.
/// </summary>
internal sealed class EnforceSignInRateLimit(IProtectionStore store) : ISignInStep
{
    public string Name => nameof(EnforceSignInRateLimit);

    public int Order => 1000;

    public bool IsEnabled(SignInContext context) => context.Policy.RateLimits.SignInPerIpPerMinute > 0;

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var count = await CountAsync(store, context.Tenant.Id, context.Ip, cancellationToken);
        return count > context.Policy.RateLimits.SignInPerIpPerMinute
            ? StepDecision.Deny("rate_limited", $"{count} attempts this minute from this IP")
            : StepDecision.Continue();
    }

    /// <summary>Counts one attempt of an address in the current minute; a password reset request counts here too.</summary>
    public static Task<long> CountAsync(IProtectionStore store, string tenantId, System.Net.IPAddress ip, CancellationToken cancellationToken) =>
        store.IncrementAsync(tenantId, $"rl:signin:{IpRanges.ProtectionKeyOf(ip)}", TimeSpan.FromMinutes(1), cancellationToken);
}
