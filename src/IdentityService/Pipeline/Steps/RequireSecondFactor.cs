using IdentityService.Data;
using IdentityService.Protection;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// The hand-off to a second factor, once the password is right: asked when the tenant requires it, when
/// the user enrolled one (mode <c>optional</c>), or, with risk-based step-up on, on a risk signal: a device
/// never seen for this account, a country never seen for it, or an IP that failed recently against other accounts;
/// and whenever an earlier step asked for one (a low reCAPTCHA score, where the tenant chose to challenge it).
/// </summary>
internal sealed class RequireSecondFactor(IdentityDb db, IProtectionStore store, IGeoLocator geo) : ISignInStep
{
    public const string Kind = "mfa";

    public string Name => nameof(RequireSecondFactor);

    public int Order => 8000;

    public bool IsEnabled(SignInContext context) =>
        context.Policy.Mfa.Mode != "off" || context.Policy.Mfa.StepUp.Enabled || context.SecondFactorNeededFor is not null;

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var mfa = context.Policy.Mfa;
        if (context.SecondFactorNeededFor is { } reason)
        {
            return StepDecision.Challenge(Kind, reason);
        }

        if (mfa.Mode == "required")
        {
            return StepDecision.Challenge(Kind, "mfa_required");
        }

        if (mfa.Mode == "optional" && context.User!.TwoFactorEnabled)
        {
            return StepDecision.Challenge(Kind, "mfa_enrolled");
        }

        if (!mfa.StepUp.Enabled)
        {
            return StepDecision.Continue();
        }

        var signals = new List<string>();
        if (mfa.StepUp.NewDevice && context.FamiliarDevice != true)
        {
            signals.Add("new_device");
        }

        if (mfa.StepUp.NewCountry && context.LookUpCountry(geo) is { } country
            && !await db.Set<UserSighting>().AnyAsync(s => s.UserId == context.User!.Id && s.Kind == UserSighting.Country && s.Value == country, cancellationToken))
        {
            signals.Add("new_country");
        }

        if (mfa.StepUp.RecentFailuresFromIp && await FailedAgainstOthersAsync(context, cancellationToken))
        {
            signals.Add("ip_failed_recently");
        }

        context.RiskSignals.AddRange(signals);
        return signals.Count == 0
            ? StepDecision.Continue()
            : StepDecision.Challenge(Kind, "risk", string.Join(",", signals));
    }

    private async Task<bool> FailedAgainstOthersAsync(SignInContext context, CancellationToken cancellationToken)
    {
        // The distinct emails that failed from this IP in the window, other than this account's own.
        var window = TimeSpan.FromMinutes(context.Policy.IpBlocking.WindowMinutes);
        return await store.CountOthersAsync(context.Tenant.Id, VerifyPassword.FailedEmailsKey(context), context.Email.ToUpperInvariant(), window, cancellationToken) > 0;
    }
}
