using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// A local stand-in for Have I Been Pwned's Pwned Passwords range API on a real loopback port, answering as it is
/// documented: <c>GET /range/{5 hex}</c> gives the suffixes (35 hex) of the known SHA-1 hashes with that prefix, one
/// <c>SUFFIX:COUNT</c> a line, and with <c>Add-Padding: true</c> adds lines counting 0. It records the paths asked.
/// </summary>
public sealed class FakePwnedPasswords : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _breached = new(StringComparer.Ordinal);

    private FakePwnedPasswords(WebApplication app) => _app = app;

    public string Address { get; private set; } = "";

    /// <summary>Every request: its path, and whether it asked for padding.</summary>
    public ConcurrentQueue<(string Path, bool Padded)> Requests { get; } = new();

    /// <summary>Not null: every request is answered with this status.</summary>
    public int? FailWith { get; set; }

    /// <summary>Makes a password known from <paramref name="count"/> breaches (0: listed as padding is).</summary>
    public void Breached(string password, int count) => _breached[Sha1(password)] = count;

    public static async Task<FakePwnedPasswords> StartAsync()
    {
        var app = LoopbackHttp.Create();
        var fake = new FakePwnedPasswords(app);
        app.MapGet("/range/{prefix}", (string prefix, HttpContext http) =>
        {
            var padded = http.Request.Headers["Add-Padding"] == "true";
            fake.Requests.Enqueue((http.Request.Path.Value!, padded));
            if (fake.FailWith is { } status)
            {
                return Results.StatusCode(status);
            }

            var lines = new StringBuilder();
            foreach (var (hash, count) in fake._breached.Where(b => b.Key.StartsWith(prefix.ToUpperInvariant(), StringComparison.Ordinal)))
            {
                lines.Append(hash[5..]).Append(':').Append(count).Append("\r\n");
            }

            // A real answer holds hundreds of other suffixes; padding adds some counting 0.
            lines.Append("0018A45C4D1DEF81644B54AB7F969B88D65:3\r\n");
            if (padded)
            {
                lines.Append("00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n");
            }

            return Results.Text(lines.ToString(), "text/plain");
        });
        fake.Address = await LoopbackHttp.StartAsync(app);
        return fake;
    }

    public static string Sha1(string password) => Convert.ToHexString(SHA1.HashData(Encoding.UTF8.GetBytes(password)));

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
