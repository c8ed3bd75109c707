using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// The test server has no network connection, so no client address: this test-only filter gives the
/// request the connection address named by <see cref="Header"/>, as a real socket would, before anything
/// of the service runs (forwarded headers included).
/// </summary>
public sealed class TestClientAddress : IStartupFilter
{
    public const string Header = "X-Test-Client-Ip";

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(async (context, inner) =>
        {
            if (context.Request.Headers.TryGetValue(Header, out var value) && IPAddress.TryParse(value, out var address))
            {
                context.Connection.RemoteIpAddress = address;
                context.Request.Headers.Remove(Header);
            }

            await inner(context);
        });
        next(app);
    };
}
