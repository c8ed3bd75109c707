namespace IdentityService.Pipeline;

/// <summary>The outcome of a sign-in attempt.</summary>
public sealed record SignInResult(StepOutcome Outcome, string? Reason, string? DecidedBy, string? ChallengeKind)
{
    public bool Succeeded => Outcome == StepOutcome.Continue;
}
