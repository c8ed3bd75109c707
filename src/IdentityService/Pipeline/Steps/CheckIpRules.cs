using IdentityService.Protection;

namespace IdentityService.Pipeline.Steps;

/// <summary>The tenant's deny list refuses an address; its allow list lets an address past the later IP checks (blocks, countries).</summary>
internal sealed class CheckIpRules : ISignInStep
{
    public string Name => nameof(CheckIpRules);

    public int Order => 2000;

    public bool IsEnabled(SignInContext context) => context.Policy.IpRules.Deny.Count > 0 || context.Policy.IpRules.Allow.Count > 0;

    public ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        // Deny wins over allow: an address on both lists is refused.
        if (IpRanges.Contains(context.Policy.IpRules.Deny, context.Ip))
        {
            return ValueTask.FromResult(StepDecision.Deny("ip_denied", "on the tenant's deny list"));
        }

        if (IpRanges.Contains(context.Policy.IpRules.Allow, context.Ip))
        {
            context.IpAllowListed = true;
            return ValueTask.FromResult(StepDecision.Continue("on the tenant's allow list"));
        }

        return ValueTask.FromResult(StepDecision.Continue());
    }
}
