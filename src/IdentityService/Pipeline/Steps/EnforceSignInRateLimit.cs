using IdentityService.Protection;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// First, before anything costs: at most <c>rateLimits.signInPerIpPerMinute</c> attempts per IP and tenant.
/// Past it the attempt is denied like any other, and no password is checked.
/// </summary>
internal sealed class EnforceSignInRateLimit(IProtectionStore store) : ISignInStep
{
    public string Name => nameof(EnforceSignInRateLimit);

    public int Order => 1000;

    public bool IsEnabled(SignInContext context) => context.Policy.RateLimits.SignInPerIpPerMinute > 0;

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var count = await store.IncrementAsync(context.Tenant.Id, $"rl:signin:{context.Ip}", TimeSpan.FromMinutes(1), cancellationToken);
        return count > context.Policy.RateLimits.SignInPerIpPerMinute
            ? StepDecision.Deny("rate_limited", $"{count} attempts this minute from this IP")
            : StepDecision.Continue();
    }
}
