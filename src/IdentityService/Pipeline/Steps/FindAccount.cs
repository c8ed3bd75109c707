using System.Security.Cryptography;
using System.Text;
using IdentityService.Data;
using IdentityService.Protection;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// Finds the account of the email within the tenant, and whether this device signed in to it before.
/// It never denies: an unknown email goes on to a dummy password check, so that it looks like a wrong password.
/// </summary>
internal sealed class FindAccount(UserManager<AppUser> users, IdentityDb db) : ISignInStep
{
    public string Name => nameof(FindAccount);

    /// <summary>Steps ordered before it screen the address alone (no account, no password): sign-up runs them too.</summary>
    public const int AccountOrder = 6000;

    public int Order => AccountOrder;

    public bool IsEnabled(SignInContext context) => true;

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        if (context.Email.Length is 0 or > 256)
        {
            return StepDecision.Continue("no such account");
        }

        context.User = await users.FindByEmailAsync(context.Email);
        if (context.User is null)
        {
            return StepDecision.Continue("no such account");
        }

        var device = DeviceHash(context.DeviceId);
        context.FamiliarDevice = device is not null && await db.Set<UserSighting>().AnyAsync(
            s => s.UserId == context.User.Id && s.Kind == UserSighting.Device && s.Value == device, cancellationToken);
        return StepDecision.Continue(context.FamiliarDevice == true ? "familiar device" : "unfamiliar device");
    }

    /// <summary>Devices are stored as hashes of their cookie's id: a database leak gives no cookie value.</summary>
    internal static string? DeviceHash(string? deviceId) =>
        string.IsNullOrEmpty(deviceId) ? null : Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(deviceId)));
}
