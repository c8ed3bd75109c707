using IdentityService.Protection;

namespace IdentityService.Pipeline;

public static class SignInContextExtensions
{
    /// <summary>The attempt's country, looked up once and kept for the log and later steps.</summary>
    public static string? LookUpCountry(this SignInContext context, IGeoLocator geo)
    {
        if (!context.CountryLookedUp)
        {
            context.Country = geo.Country(context.Ip);
            context.CountryLookedUp = true;
        }

        return context.Country;
    }
}
