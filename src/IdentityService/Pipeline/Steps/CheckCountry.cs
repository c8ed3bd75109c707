using IdentityService.Protection;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// The country allow-list (ISO 3166-1 alpha-2). The country comes from the IP-to-country database; an
/// address with no known country (private, or no database) is allowed or denied as the tenant chose.
/// </summary>
internal sealed class CheckCountry(IGeoLocator geo) : ISignInStep
{
    public string Name => nameof(CheckCountry);

    public int Order => 4000;

    public bool IsEnabled(SignInContext context) => context.Policy.Countries.Allowed.Count > 0 && !context.IpAllowListed;

    public ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var country = context.LookUpCountry(geo);
        if (country is null)
        {
            return ValueTask.FromResult(context.Policy.Countries.WhenUnknown == "deny"
                ? StepDecision.Deny("country_unknown", "no country known for this address")
                : StepDecision.Continue("country unknown, allowed by policy"));
        }

        return ValueTask.FromResult(context.Policy.Countries.Allowed.Contains(country, StringComparer.OrdinalIgnoreCase)
            ? StepDecision.Continue(country)
            : StepDecision.Deny("country_not_allowed", country));
    }
}
