using System.Net;
using IdentityService.Policy;
using IdentityService.Tenancy;
using IdentityService.Users;

namespace IdentityService.Pipeline;

/// <summary>One sign-in attempt as the steps see it, and the trace they leave.</summary>
public sealed class SignInContext
{
    public required Tenant Tenant { get; init; }

    public required TenantPolicy Policy { get; init; }

    public required HttpContext Http { get; init; }

    /// <summary>The identifier as typed (trimmed).</summary>
    public required string Email { get; init; }

    public required string Password { get; init; }

    public required IPAddress Ip { get; init; }

    /// <summary>What the per-address protections count and block for <see cref="Ip"/> (<see cref="Protection.IpRanges.ProtectionKeyOf"/>).</summary>
    public string IpKey => _ipKey ??= Protection.IpRanges.ProtectionKeyOf(Ip);

    private string? _ipKey;

    public string? UserAgent { get; init; }

    /// <summary>The client the person is signing in to, when the sign-in came from an authorization request.</summary>
    public string? ClientId { get; init; }

    /// <summary>Set by the IP rules when the address is on the tenant's allow list: later IP checks let it pass.</summary>
    public bool IpAllowListed { get; set; }

    /// <summary>The reCAPTCHA token the page posted, when the tenant uses reCAPTCHA.</summary>
    public string? CaptchaToken { get; init; }

    /// <summary>The browser's long-lived device id (from its signed device cookie), or null on a new browser.</summary>
    public string? DeviceId { get; init; }

    /// <summary>The ISO 3166-1 alpha-2 country of <see cref="Ip"/>, once a step looked it up.</summary>
    public string? Country { get; set; }

    public bool CountryLookedUp { get; set; }

    /// <summary>The account, once found (null for an unknown email).</summary>
    public AppUser? User { get; set; }

    /// <summary>True once a step spent the time of a password hash (a real or a dummy one).</summary>
    public bool HashSpent { get; set; }

    /// <summary>True once the password was checked and right.</summary>
    public bool PasswordVerified { get; set; }

    /// <summary>Whether the device is one the account signed in from before (known once the account is).</summary>
    public bool? FamiliarDevice { get; set; }

    /// <summary>Set by a step before the password that wants a second factor asked once the password is right (its reason).</summary>
    public string? SecondFactorNeededFor { get; set; }

    /// <summary>Risk signals raised along the way (for the second-factor step and the log).</summary>
    public List<string> RiskSignals { get; } = [];

    public List<StepTrace> Trace { get; } = [];
}

/// <summary>What a step decided and why, as written to the sign-in log.</summary>
public sealed record StepTrace(string Step, string Decision, string? Reason, string? Detail);
