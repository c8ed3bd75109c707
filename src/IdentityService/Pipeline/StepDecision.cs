namespace IdentityService.Pipeline;

public enum StepOutcome
{
    Continue,
    Challenge,
    Deny,
}

/// <summary>
/// A step's answer: go on, ask for more (a CAPTCHA or a second factor), or deny with a reason code.
/// A denial is a value, never an exception; the person sees one generic message whatever the reason.
/// </summary>
public readonly record struct StepDecision(StepOutcome Outcome, string? Reason = null, string? Detail = null, string? ChallengeKind = null)
{
    public static StepDecision Continue(string? detail = null) => new(StepOutcome.Continue, null, detail);

    public static StepDecision Deny(string reason, string? detail = null) => new(StepOutcome.Deny, reason, detail);

    public static StepDecision Challenge(string kind, string reason, string? detail = null) => new(StepOutcome.Challenge, reason, detail, kind);
}
