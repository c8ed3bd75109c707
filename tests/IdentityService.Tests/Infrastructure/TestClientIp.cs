using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// Gives a request of the in-memory test server (which has no connection address) the address a test names in
/// the test-only header <c>X-Test-Client-Ip</c>, as the connection's address: before any of the service's
/// middleware, so forwarded headers and the sign-in pipeline see it as they would a real connection.
/// Registered only by <see cref="IdentityServiceFactory"/>; without the header nothing changes.
/// </summary>
public sealed class TestClientIpStartupFilter : IStartupFilter
{
    public const string Header = "X-Test-Client-Ip";

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use((context, nextMiddleware) =>
        {
            if (context.Request.Headers.TryGetValue(Header, out var value) && IPAddress.TryParse(value.ToString(), out var address))
            {
                context.Connection.RemoteIpAddress = address;
            }

            return nextMiddleware(context);
        });
        next(app);
    };
}
