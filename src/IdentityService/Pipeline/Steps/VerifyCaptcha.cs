using IdentityService.Protection.Captcha;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// reCAPTCHA scoring (v3 or Enterprise, as the tenant chose): the token must be valid, for the expected action
/// and hostname, and score at least the threshold; below it the attempt is denied or challenged, as the tenant
/// chose. When Google cannot be reached, the step fails open or closed as the tenant chose, and says so in the trace.
/// </summary>
internal sealed class VerifyCaptcha(ICaptchaVerifier verifier) : ISignInStep
{
    public string Name => nameof(VerifyCaptcha);

    public int Order => 5000;

    public bool IsEnabled(SignInContext context) => context.Policy.Captcha.Provider is "v3" or "enterprise";

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var policy = context.Policy.Captcha;
        var verdict = await verifier.VerifyAsync(policy, context.CaptchaToken, context.Ip, context.UserAgent, cancellationToken);
        if (!verdict.Reachable)
        {
            return policy.WhenUnavailable == "closed"
                ? StepDecision.Deny("captcha_unavailable", $"Google unreachable ({verdict.Error}): failed closed")
                : StepDecision.Continue($"Google unreachable ({verdict.Error}): failed open");
        }

        if (!verdict.Valid)
        {
            return StepDecision.Deny("captcha_invalid", verdict.Error);
        }

        // An answer without the action is not one for the expected action: a token made for another action,
        // or none, must not pass.
        if (!string.IsNullOrEmpty(policy.ExpectedAction) && verdict.Action != policy.ExpectedAction)
        {
            return StepDecision.Deny("captcha_wrong_action", verdict.Action ?? "no action");
        }

        if (policy.Hostnames.Count > 0 && !policy.Hostnames.Contains(verdict.Hostname ?? "", StringComparer.OrdinalIgnoreCase))
        {
            return StepDecision.Deny("captcha_wrong_hostname", verdict.Hostname);
        }

        var detail = $"score {verdict.Score?.ToString("0.0#", System.Globalization.CultureInfo.InvariantCulture) ?? "none"}";
        if (verdict.Score is null || verdict.Score < policy.Threshold)
        {
            if (policy.BelowThreshold != "challenge")
            {
                return StepDecision.Deny("captcha_low_score", detail);
            }

            // A second factor can only be asked once the password is right: the attempt goes on, and the
            // second-factor step asks for one (a wrong password is refused as any other).
            context.SecondFactorNeededFor = "captcha_low_score";
            return StepDecision.Continue(detail + ", second factor to be asked");
        }

        return StepDecision.Continue(detail);
    }
}
