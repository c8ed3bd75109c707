using IdentityService.Pipeline.Steps;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Protection.Captcha;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace IdentityService.Pipeline;

public static class PipelineSetup
{
    /// <summary>The sign-in pipeline: its steps in one explicit list, the policy store and the protections' state.</summary>
    public static IServiceCollection AddSignInPipeline(this IServiceCollection services)
    {
        services.AddScoped<SignInPipeline>();
        services.AddSingleton<Audit.AuditLog>();
        services.AddSingleton<SignInLog>();
        services.AddSingleton<PolicyStore>();
        services.AddScoped<DeviceCookie>();

        services.AddSignInStep<EnforceSignInRateLimit>();
        services.AddSignInStep<CheckIpRules>();
        services.AddSignInStep<CheckIpBlock>();
        services.AddSignInStep<CheckCountry>();
        services.AddSignInStep<VerifyCaptcha>();
        services.AddSignInStep<FindAccount>();
        services.AddSignInStep<VerifyPassword>();
        services.AddSignInStep<RefuseBreachedPassword>();
        services.AddSingleton<CheckedPasswords>();
        services.AddSignInStep<NotifyNewDevice>();
        services.AddSignInStep<RequireSecondFactor>();
        services.AddScoped<Mfa.SecondFactors>();
        services.AddScoped<Mfa.RecoveryCodes>();
        services.AddScoped<Mfa.Passkeys>();
        services.AddScoped<Mfa.TrustedBrowsers>();
        services.AddScoped<IPasskeyHandler<Users.AppUser>, PasskeyHandler<Users.AppUser>>();
        services.AddOptions<IdentityPasskeyOptions>().Configure<IOptions<Oidc.IssuerOptions>>((passkeys, issuer) =>
        {
            // The relying party is the service's public host; the only origin taken is the service's own. (The handler's
            // own check compares with the request's Origin header, which browsers send as "null" from pages with no referrer.)
            if (issuer.Value.PublicOrigin is { } origin)
            {
                passkeys.ServerDomain = new Uri(origin).Host;
            }

            passkeys.ValidateOrigin = context => ValueTask.FromResult(
                !context.CrossOrigin
                && string.Equals(context.Origin, issuer.Value.OriginFor(context.HttpContext.Request), StringComparison.OrdinalIgnoreCase));
        });
        services.AddOptions<Mfa.TwilioOptions>().BindConfiguration(Mfa.TwilioOptions.Section);
        services.AddHttpClient<Mfa.TwilioSms>(client => client.Timeout = TimeSpan.FromSeconds(10));

        services.AddOptions<GeoIpOptions>().BindConfiguration(GeoIpOptions.Section);
        services.AddSingleton<IGeoLocator, MaxMindGeoLocator>();
        services.AddOptions<CaptchaOptions>().BindConfiguration(CaptchaOptions.Section);
        services.AddHttpClient<ICaptchaVerifier, RecaptchaVerifier>();

        // Single-instance defaults; the Redis setup replaces them when Redis:Configuration is set.
        services.AddSingleton<IProtectionStore, InMemoryProtectionStore>();
        services.AddSingleton<ILockoutStore, DatabaseLockoutStore>();
        services.AddSingleton<IInvalidationBus, LocalInvalidationBus>();
        return services;
    }

    /// <summary>Adds a step to the pipeline. A step is scoped: it may use the request's database context.</summary>
    public static IServiceCollection AddSignInStep<TStep>(this IServiceCollection services)
        where TStep : class, ISignInStep =>
        services.AddScoped<ISignInStep, TStep>();
}
