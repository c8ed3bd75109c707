using IdentityService.Protection;

namespace IdentityService.Pipeline.Steps;

/// <summary>Refuses an address under a temporary block (suspicious activity, or set by an admin).</summary>
internal sealed class CheckIpBlock(IProtectionStore store) : ISignInStep
{
    public string Name => nameof(CheckIpBlock);

    public int Order => 3000;

    public bool IsEnabled(SignInContext context) => !context.IpAllowListed;

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var block = await store.GetBlockAsync(context.Tenant.Id, context.IpKey, cancellationToken);
        return block is null
            ? StepDecision.Continue()
            : StepDecision.Deny("ip_blocked", $"{block.Reason}, until {block.Until:O}");
    }
}
