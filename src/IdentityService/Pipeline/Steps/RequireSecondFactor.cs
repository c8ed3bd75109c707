using IdentityService.Data;
using IdentityService.Protection;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// The hand-off to a second factor, once the password is right: asked when the tenant requires it, when
/// the user enrolled one (mode <c>optional</c>), or, with risk-based step-up on, on a risk signal: a device
/// never seen for this account, a country never seen for it, or an IP that failed recently against other accounts;
/// and whenever an earlier step asked for one (a low reCAPTCHA score, where the tenant chose to challenge it).
/// A browser the person chose to remember (<c>mfa.rememberBrowserDays</c>) skips the first two, never the others.
/// </summary>
internal sealed class RequireSecondFactor(IdentityDb db, IProtectionStore store, IGeoLocator geo, Mfa.TrustedBrowsers browsers) : ISignInStep
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

        string? remembered = null;
        if (mfa.Mode == "required" || (mfa.Mode == "optional" && context.User!.TwoFactorEnabled))
        {
            if (mfa.RememberBrowserDays == 0 || !await browsers.IsTrustedAsync(context.Http, context.User!, cancellationToken))
            {
                return StepDecision.Challenge(Kind, mfa.Mode == "required" ? "mfa_required" : "mfa_enrolled");
            }

            remembered = "remembered_browser";
        }

        if (!mfa.StepUp.Enabled)
        {
            return StepDecision.Continue(remembered);
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
            ? StepDecision.Continue(remembered)
            : StepDecision.Challenge(Kind, "risk", string.Join(",", signals));
    }

    private async Task<bool> FailedAgainstOthersAsync(SignInContext context, CancellationToken cancellationToken)
    {
        // The distinct emails that failed from this IP in the window, other than this account's own.
        var window = TimeSpan.FromMinutes(context.Policy.IpBlocking.WindowMinutes);
        return await store.CountOthersAsync(context.Tenant.Id, VerifyPassword.FailedEmailsKey(context), context.Email.ToUpperInvariant(), window, cancellationToken) > 0;
    }
}
