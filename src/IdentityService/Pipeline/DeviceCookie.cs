using System.Security.Cryptography;
using IdentityService.Data;
using IdentityService.Pipeline.Steps;
using IdentityService.Protection;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Pipeline;

/// <summary>
/// A signed, long-lived cookie naming the browser (a random id), set after a successful sign-in. Devices
/// and countries an account signed in from are remembered, so that later attempts can be told familiar
/// (smart lockout, step-up). The database keeps only a hash of the id.
/// </summary>
public sealed class DeviceCookie(IDataProtectionProvider dataProtection, IdentityDb db, TimeProvider time)
{
    private const string Name = ".IdentityService.Device";
    /// <summary>How long a browser keeps its device id after its last sign-in.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromDays(400);
    private readonly IDataProtector _protector = dataProtection.CreateProtector("IdentityService.DeviceCookie.v1");

    /// <summary>The device id of this browser, or null when it has none (or a forged one).</summary>
    public string? Read(HttpContext context)
    {
        var value = context.Request.Cookies[Name];
        if (string.IsNullOrEmpty(value) || value.Length > 1024)
        {
            return null;
        }

        try
        {
            return _protector.Unprotect(value);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    private static readonly TimeSpan LastSeenResolution = TimeSpan.FromHours(1);

    /// <summary>After a successful sign-in: gives the browser an id if it has none, and remembers the device and country for the account.</summary>
    public Task RememberAsync(SignInContext context, CancellationToken cancellationToken) =>
        RememberAsync(context.Http, context.User!.Id, context.DeviceId, context.Country, cancellationToken);

    /// <summary>The same, for a sign-in completed later (by its second factor), from the browser it was made in.</summary>
    public async Task RememberAsync(HttpContext http, Guid userId, string? deviceId, string? country, CancellationToken cancellationToken)
    {
        deviceId ??= Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        http.Response.Cookies.Append(Name, _protector.Protect(deviceId), SignIn.TenantCookies.Options(http.Request, SameSiteMode.Lax, time.GetUtcNow() + Lifetime));

        await SightAsync(userId, UserSighting.Device, FindAccount.DeviceHash(deviceId)!, cancellationToken);
        if (country is not null)
        {
            await SightAsync(userId, UserSighting.Country, country, cancellationToken);
        }
    }

    private async Task SightAsync(Guid userId, string kind, string value, CancellationToken cancellationToken)
    {
        // A sighting is known (read) far more often than it is new (written); its last-seen time is kept to the
        // hour, so a regular sign-in from a known device writes nothing here.
        var now = time.GetUtcNow();
        var sightings = db.Set<UserSighting>().Where(s => s.UserId == userId && s.Kind == kind && s.Value == value);
        var lastSeen = await sightings.Select(s => (DateTimeOffset?)s.LastSeen).FirstOrDefaultAsync(cancellationToken);
        if (lastSeen is { } seen)
        {
            if (seen < now - LastSeenResolution)
            {
                await sightings.ExecuteUpdateAsync(s => s.SetProperty(x => x.LastSeen, now), cancellationToken);
            }

            return;
        }

        db.Add(new UserSighting { Id = Guid.NewGuid(), UserId = userId, Kind = kind, Value = value, FirstSeen = now, LastSeen = now });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // The same sighting was recorded by a parallel sign-in.
        }
    }
}
