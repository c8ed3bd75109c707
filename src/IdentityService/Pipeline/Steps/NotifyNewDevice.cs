using IdentityService.Data;
using IdentityService.Email;
using IdentityService.Protection;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// Where the tenant asks it (<c>notifications.newDevice</c>), mails the account's owner when its password is used
/// from a device it never signed in from: when, where from and which browser, and what to do if it was not them.
/// It runs once the password is right and before any second factor, so an owner whose second factor stopped an
/// intruder still learns that their password is known. Never on the account's first sign-in (every device is new
/// then), only to a verified address, and at most <see cref="MailsPerHour"/> an hour. It never decides anything.
/// </summary>
internal sealed class NotifyNewDevice(IdentityDb db, Mailer mailer, IProtectionStore store, IGeoLocator geo, Microsoft.Extensions.Options.IOptions<Oidc.IssuerOptions> issuer, TimeProvider time) : ISignInStep
{
    public const int MailsPerHour = 3;

    public string Name => nameof(NotifyNewDevice);

    public int Order => 7500;

    public bool IsEnabled(SignInContext context) => context.Policy.Notifications.NewDevice;

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var user = context.User!;
        if (context.FamiliarDevice == true || !user.EmailConfirmed || string.IsNullOrEmpty(user.Email) || !mailer.IsConfiguredFor(context.Policy))
        {
            return StepDecision.Continue();
        }

        if (!await db.Set<UserSighting>().AnyAsync(s => s.UserId == user.Id && s.Kind == UserSighting.Device, cancellationToken))
        {
            return StepDecision.Continue("first sign-in");
        }

        if (await store.IncrementAsync(context.Tenant.Id, $"rl:newdevice:{user.Id}", TimeSpan.FromHours(1), cancellationToken) > MailsPerHour)
        {
            return StepDecision.Continue("new device, mail limit reached");
        }

        var name = context.Tenant.DisplayName;
        var country = context.LookUpCountry(geo);
        var browser = Audit.UserAgents.Describe(context.UserAgent) ?? "an unknown browser";
        var pages = issuer.Value.IssuerFor(context.Http.Request, context.Tenant.Id) + "/";
        mailer.Enqueue(context.Policy, user.Email, $"New sign-in to your {name} account",
            $"""
            Your {name} account ({user.Email}) was signed in to from a device it was never used on before:

            When: {time.GetUtcNow():yyyy-MM-dd HH:mm} UTC
            From: {context.Ip}{(country is null ? "" : $" ({country})")}
            Browser: {browser}

            If this was you, there is nothing to do.

            If it was not, someone knows your password: set a new one at once here, and tell your administrator:

            {pages}forgot-password
            """);
        return StepDecision.Continue("new device, owner mailed");
    }
}
