using IdentityService.Email;
using IdentityService.Users;
using Microsoft.Extensions.Caching.Memory;

namespace IdentityService.Pipeline.Steps;

/// <summary>
/// Where the tenant asks it (<c>passwords.checkBreachedAtSignIn</c>), a right password known from a data breach does
/// not sign in: the sign-in is refused with <see cref="Reason"/> and the owner is mailed a link to choose a new one
/// (as "Forgot your password?" does, under its limits). Only whoever knows the password learns this. If the breach
/// API cannot be asked, the sign-in goes on. A password found clean is not asked about again for a day (remembered
/// by the account and its stored hash, never the password), so a person signing in often costs one question a day.
/// </summary>
internal sealed class RefuseBreachedPassword(PwnedPasswordsClient pwned, PasswordResets resets, CheckedPasswords clean, Microsoft.Extensions.Options.IOptions<Oidc.IssuerOptions> issuer) : ISignInStep
{
    public const string Reason = "password_breached";

    public string Name => nameof(RefuseBreachedPassword);

    public int Order => 7200;

    public bool IsEnabled(SignInContext context) => context.Policy.Passwords.CheckBreachedAtSignIn;

    public async ValueTask<StepDecision> RunAsync(SignInContext context, CancellationToken cancellationToken)
    {
        var user = context.User!;
        var key = $"{user.Id}:{user.PasswordHash}";
        if (!context.PasswordVerified || clean.Contains(key))
        {
            return StepDecision.Continue();
        }

        switch (await pwned.CountAsync(context.Password, cancellationToken))
        {
            case null:
                return StepDecision.Continue("breach check unavailable");
            case 0:
                clean.Add(key);
                return StepDecision.Continue();
            case var count:
                var resetPage = issuer.Value.IssuerFor(context.Http.Request, context.Tenant.Id) + "/reset-password";
                await resets.RequestAsync(user.Email!, context.Ip, resetPage, cancellationToken);
                return StepDecision.Deny(Reason, $"password known from {count} breaches; a reset link was offered");
        }
    }
}

/// <summary>Accounts whose current password was found in no breach lately: by account and stored hash, for a day.</summary>
public sealed class CheckedPasswords(TimeProvider time) : IDisposable
{
    private static readonly TimeSpan For = TimeSpan.FromDays(1);
    private readonly MemoryCache _clean = new(new MemoryCacheOptions { SizeLimit = 100_000 });

    /// <summary>Whether the key was found clean within the day, by the service's clock.</summary>
    public bool Contains(string key) => _clean.TryGetValue(key, out DateTimeOffset until) && until > time.GetUtcNow();

    public void Add(string key) => _clean.Set(key, time.GetUtcNow() + For, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = For });

    public void Dispose() => _clean.Dispose();
}
