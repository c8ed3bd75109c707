using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.SignIn;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// Checks the password, under the account's lockout, and counts failures.
/// Order of checks, so that they reveal nothing: an unknown email, a locked account and a wrong password all
/// cost one password hash and end in the same denial. A locked account's password is never checked (a
/// right one during the lockout still fails). An attempt takes a lockout slot before its hash, so parallel
/// attempts lock the account at exactly the threshold.
/// Failures with unknown emails, and many distinct emails, from one IP block that IP.
/// </summary>
internal sealed class VerifyPassword(PasswordSignIn passwords, ILockoutStore lockouts, IProtectionStore store, TimeProvider time) : ISignInStep
{
    /// <summary>The refusal of a right password whose account an admin disabled: the one the page names.</summary>
    public const string AccountDisabled = "account_disabled";

    public string Name => nameof(VerifyPassword);

    public int Order => 7000;

    public bool IsEnabled(SignInContext context) => true;

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var policy = context.Policy;
        context.HashSpent = true;
        if (context.User is null)
        {
            passwords.HashDummy(context.Password);
            await CountFailureAsync(context, unknownUser: true, cancellationToken);
            return StepDecision.Deny("invalid_credentials", "unknown email");
        }

        var key = LockoutKey(context);
        var slot = await lockouts.BeginAttemptAsync(context.Tenant.Id, key, policy.Lockout.MaxFailedAttempts, cancellationToken);
        if (slot == AttemptSlot.Locked)
        {
            passwords.HashDummy(context.Password);
            return StepDecision.Deny("account_locked", key);
        }

        var verified = false;
        try
        {
            verified = await passwords.VerifyAsync(context.User, context.Password);
        }
        finally
        {
            await lockouts.CompleteAttemptAsync(context.Tenant.Id, key, verified, policy.Lockout.MaxFailedAttempts,
                TimeSpan.FromMinutes(policy.Lockout.LockoutMinutes), CancellationToken.None);
        }

        if (!verified)
        {
            await CountFailureAsync(context, unknownUser: false, cancellationToken);
            return StepDecision.Deny("invalid_credentials", "wrong password");
        }

        // Only now, the password right: who does not know it learns nothing of the account's state.
        if (context.User.Disabled)
        {
            return StepDecision.Deny(AccountDisabled, "disabled by an admin");
        }

        context.PasswordVerified = true;
        return StepDecision.Continue();
    }

    /// <summary>
    /// Plain mode: one counter per account. Smart mode: familiar devices and unfamiliar ones count apart, so
    /// whoever knows an email locks out only the devices the owner never used.
    /// </summary>
    internal static string LockoutKey(SignInContext context) =>
        context.Policy.Lockout.Mode == LockoutModes.Smart
            ? $"{context.User!.Id}:{(context.FamiliarDevice == true ? "familiar" : "unfamiliar")}"
            : context.User!.Id.ToString();

    /// <summary>The tenant's set of distinct emails that failed from the attempt's IP.</summary>
    internal static string FailedEmailsKey(SignInContext context) => $"ipfailed:{context.IpKey}";

    private async Task CountFailureAsync(SignInContext context, bool unknownUser, CancellationToken cancellationToken)
    {
        var policy = context.Policy.IpBlocking;
        var window = TimeSpan.FromMinutes(policy.WindowMinutes);
        var ip = context.IpKey;
        var tenant = context.Tenant.Id;
        var distinct = await store.AddDistinctAsync(tenant, FailedEmailsKey(context), context.Email.ToUpperInvariant(), window, cancellationToken);
        if (context.IpAllowListed)
        {
            return;
        }

        string? reason = null;
        if (unknownUser && policy.UnknownUserFailures > 0
            && await store.IncrementAsync(tenant, $"ipunknown:{ip}", window, cancellationToken) >= policy.UnknownUserFailures)
        {
            reason = "unknown_user_failures";
        }
        else if (policy.DistinctUsernames > 0 && distinct >= policy.DistinctUsernames)
        {
            reason = "credential_stuffing";
        }

        if (reason is not null)
        {
            await store.BlockAsync(tenant, ip, time.GetUtcNow().AddMinutes(policy.BlockMinutes), reason, cancellationToken);
            context.RiskSignals.Add("ip_blocked:" + reason);
        }
    }
}
