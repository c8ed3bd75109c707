using System.Net;
using System.Security.Authentication;
using IdentityService.Data;
using IdentityService.Oidc;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace IdentityService.Diagnostics;

/// <summary>The <c>ForwardedHeaders</c> section: which proxies may say who the client is.</summary>
public sealed class ForwardedHeadersSettings
{
    public const string Section = "ForwardedHeaders";

    /// <summary>Addresses of trusted reverse proxies. Default: none (the connection's address is the client's).</summary>
    public List<string> KnownProxies { get; set; } = [];

    /// <summary>CIDR ranges of trusted reverse proxies. Default: none.</summary>
    public List<string> KnownNetworks { get; set; } = [];
}

public static class HostingSetup
{
    public static IServiceCollection AddHostingAndSecurity(this IServiceCollection services, IConfiguration configuration, IHostEnvironment environment)
    {
        services.AddHttpContextAccessor();
        services.TryAddTimeProvider();
        services.AddOptions<IssuerOptions>().BindConfiguration(IssuerOptions.Section)
            .Validate(o => environment.IsDevelopment() || IsOrigin(o.PublicOrigin, requireHttps: true),
                "Issuer:PublicOrigin is required outside Development: an https origin such as https://id.example.com, without path.")
            .Validate(o => o.PublicOrigin is null || IsOrigin(o.PublicOrigin, requireHttps: false),
                "Issuer:PublicOrigin must be an origin such as https://id.example.com, without path.")
            .ValidateOnStart();
        services.AddOptions<BootstrapOptions>().BindConfiguration(BootstrapOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.AdminClientId), "Bootstrap:AdminClientId must not be empty.")
            .Validate(o => environment.IsDevelopment() || !string.IsNullOrWhiteSpace(o.AdminClientSecret),
                "Bootstrap:AdminClientSecret is required outside Development (environment variable Bootstrap__AdminClientSecret).")
            .ValidateOnStart();
        services.AddSingleton<DatabaseInitializer>();
        services.AddHostedService(sp => sp.GetRequiredService<DatabaseInitializer>());

        var forwarded = configuration.GetSection(ForwardedHeadersSettings.Section).Get<ForwardedHeadersSettings>() ?? new();
        services.Configure<ForwardedHeadersOptions>(options =>
        {
            options.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            options.KnownIPNetworks.Clear();
            options.KnownProxies.Clear();
            foreach (var proxy in forwarded.KnownProxies)
            {
                options.KnownProxies.Add(IPAddress.TryParse(proxy, out var ip)
                    ? ip
                    : throw new OptionsValidationException(ForwardedHeadersSettings.Section, typeof(ForwardedHeadersSettings), [$"ForwardedHeaders:KnownProxies: '{proxy}' is not an IP address."]));
            }

            foreach (var network in forwarded.KnownNetworks)
            {
                options.KnownIPNetworks.Add(System.Net.IPNetwork.TryParse(network, out var parsed)
                    ? parsed
                    : throw new OptionsValidationException(ForwardedHeadersSettings.Section, typeof(ForwardedHeadersSettings), [$"ForwardedHeaders:KnownNetworks: '{network}' is not a CIDR range."]));
            }
        });

        services.Configure<KestrelServerOptions>(options =>
            options.ConfigureHttpsDefaults(https => https.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13));
        services.AddHsts(options => options.MaxAge = TimeSpan.FromDays(365));

        // The Data Protection key ring lives in the database, so every replica reads the same keys.
        var dataProtection = services.AddDataProtection().SetApplicationName("IdentityService").PersistKeysToDatabase(configuration);
        var certificatePath = configuration["DataProtection:CertificatePath"];
        if (!string.IsNullOrEmpty(certificatePath))
        {
            dataProtection.ProtectKeysWithCertificate(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(
                certificatePath, configuration["DataProtection:CertificatePassword"]));
        }

        return services;
    }

    public static WebApplication UseHostingAndSecurity(this WebApplication app)
    {
        app.UseForwardedHeaders();
        app.UseExceptionHandler();
        if (!app.Environment.IsDevelopment())
        {
            app.UseHsts();
            app.UseHttpsRedirection();
        }

        return app;
    }

    private static void TryAddTimeProvider(this IServiceCollection services)
    {
        if (!services.Any(d => d.ServiceType == typeof(TimeProvider)))
        {
            services.AddSingleton(TimeProvider.System);
        }
    }

    private static bool IsOrigin(string? value, bool requireHttps) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttps || (!requireHttps && uri.Scheme == Uri.UriSchemeHttp))
        && string.Equals(value.TrimEnd('/'), uri.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase);
}
