using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// The service on a real loopback port (Kestrel instead of the in-memory test server), for a real browser
/// and a real relying party. Those check token lifetimes and cookie expiry against the machine's clock, so
/// the service runs on the system clock here rather than on <see cref="IdentityServiceFactory.Time"/>.
/// </summary>
public sealed class KestrelIdentityServiceFactory : IdentityServiceFactory
{
    private Uri? _address;

    public KestrelIdentityServiceFactory()
    {
        UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
    }

    /// <summary>The service's origin, such as http://127.0.0.1:41234, once <see cref="Start"/> has run.</summary>
    public Uri Address => _address ?? throw new InvalidOperationException("Call Start() first.");

    /// <summary>Starts Kestrel and returns the origin it listens on.</summary>
    public Uri Start()
    {
        if (_address is null)
        {
            StartServer();
            var addresses = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
            _address = new Uri(addresses.Single());
            ClientOptions.BaseAddress = _address;
        }

        return _address;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services => services.AddSingleton(TimeProvider.System));
    }
}
