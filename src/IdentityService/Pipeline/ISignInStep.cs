namespace IdentityService.Pipeline;

/// <summary>
/// One protection of the sign-in pipeline. A step says when it runs (<see cref="IsEnabled"/>, usually a
/// switch of the tenant's policy), where (<see cref="Order"/>, spaced by 1,000 so new steps slot in between),
/// and what it decided. Register a step with <c>AddSignInStep&lt;T&gt;()</c>.
/// </summary>
public interface ISignInStep
{
    /// <summary>A stable name, written in the sign-in log (verb + noun: <c>CheckIpRules</c>).</summary>
    string Name { get; }

    int Order { get; }

    bool IsEnabled(SignInContext context);

    ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken);

    /// <summary>Called on every step that ran, once the attempt's outcome is known (to count failures, reset counters...).</summary>
    ValueTask CompleteAsync(SignInContext context, SignInResult result, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
