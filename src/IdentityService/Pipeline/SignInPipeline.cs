namespace IdentityService.Pipeline;

/// <summary>
/// Runs the registered steps in order until one does not continue, then lets each step that ran see the
/// outcome, and writes the attempt with its decision trace to the sign-in log. An attempt whose password
/// no step verified never succeeds, whatever the steps registered.
/// </summary>
public sealed class SignInPipeline(IEnumerable<ISignInStep> steps, SignInLog log, SignIn.PasswordSignIn passwords)
{
    /// <summary>
    /// The one refusal answered without spending a hash: past the rate limit, the point is to spend nothing
    /// (CONTRACT.md section 8).
    /// </summary>
    private const string RateLimited = "rate_limited";

    private readonly ISignInStep[] _steps = steps.OrderBy(s => s.Order).ToArray();

    public IReadOnlyList<ISignInStep> Steps => _steps;

    /// <summary>
    /// Runs the steps that look at the address alone (those before the account is looked up), for what is not a
    /// password sign-in (a sign-up, a passkey sign-in). Answers the first refusal, or the second factor a step asked
    /// for (a low reCAPTCHA score), with the step's name; null when all let it through. Nothing is counted as a
    /// sign-in failure.
    /// </summary>
    public async Task<(string? Reason, string Step)?> ScreenAsync(SignInContext context, CancellationToken cancellationToken, string? skip = null)
    {
        foreach (var step in _steps.Where(s => s.Order < Pipeline.Steps.FindAccount.AccountOrder && s.Name != skip && s.IsEnabled(context)))
        {
            var decision = await step.RunAsync(context, cancellationToken);
            context.Trace.Add(new StepTrace(step.Name, decision.Outcome.ToString().ToLowerInvariant(), decision.Reason, decision.Detail));
            if (decision.Outcome != StepOutcome.Continue || context.SecondFactorNeededFor is not null)
            {
                return (decision.Outcome != StepOutcome.Continue ? decision.Reason : context.SecondFactorNeededFor, step.Name);
            }
        }

        return null;
    }

    public async Task<SignInResult> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var ran = new List<ISignInStep>(_steps.Length);
        SignInResult? result = null;
        foreach (var step in _steps)
        {
            if (!step.IsEnabled(context))
            {
                continue;
            }

            ran.Add(step);
            var decision = await step.RunAsync(context, cancellationToken);
            context.Trace.Add(new StepTrace(step.Name, decision.Outcome.ToString().ToLowerInvariant(), decision.Reason, decision.Detail));
            if (decision.Outcome != StepOutcome.Continue)
            {
                result = new SignInResult(decision.Outcome, decision.Reason, step.Name, decision.ChallengeKind);
                break;
            }
        }

        result ??= context.PasswordVerified
            ? new SignInResult(StepOutcome.Continue, null, null, null)
            : new SignInResult(StepOutcome.Deny, "password_not_verified", null, null);

        // A refusal by a step before the password (a blocked IP, a country, reCAPTCHA) takes as long as a wrong
        // password: the response time must not tell which protection fired.
        if (!result.Succeeded && !context.HashSpent && result.Reason != RateLimited)
        {
            passwords.HashDummy(context.Password);
            context.HashSpent = true;
        }

        foreach (var step in ran)
        {
            await step.CompleteAsync(context, result, cancellationToken);
        }

        await log.WriteAsync(context, result);
        return result;
    }
}
