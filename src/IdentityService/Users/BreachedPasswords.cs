using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using IdentityService.Policy;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace IdentityService.Users;

public sealed class BreachedPasswordsOptions
{
    public const string Section = "BreachedPasswords";

    /// <summary>The Pwned Passwords range API. Default: <c>https://api.pwnedpasswords.com</c>.</summary>
    public string BaseUrl { get; set; } = "https://api.pwnedpasswords.com";

    /// <summary>How long to wait for it before taking the password unchecked. Default: 3 seconds.</summary>
    public double TimeoutSeconds { get; set; } = 3;
}

/// <summary>
/// Have I Been Pwned's Pwned Passwords range API, by k-anonymity: only the first 5 hex characters of the password's
/// SHA-1 leave the service (<c>GET /range/{prefix}</c>, with <c>Add-Padding</c> so the answer's size says nothing
/// either); the suffixes that come back are compared here. SHA-1 is what the API indexes by, not a way of storing.
/// </summary>
public sealed class PwnedPasswordsClient(HttpClient http, IOptions<BreachedPasswordsOptions> options, ILogger<PwnedPasswordsClient> logger)
{
    /// <summary>How many breaches the password is known from (0: none); null when the API could not be asked.</summary>
    public async Task<int?> CountAsync(string password, CancellationToken cancellationToken)
    {
        var hash = Convert.ToHexString(SHA1.HashData(Encoding.UTF8.GetBytes(password)));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.TimeoutSeconds));
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, options.Value.BaseUrl.TrimEnd('/') + "/range/" + hash[..5]);
            request.Headers.Add("Add-Padding", "true");
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                logger.LogWarning("The breached-password API answered {Status}: the password is taken unchecked.", (int)response.StatusCode);
                return null;
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
            while (await reader.ReadLineAsync(timeout.Token) is { } line)
            {
                // SUFFIX:COUNT, the suffix being the 35 hex characters after the prefix; padding lines count 0.
                var colon = line.IndexOf(':');
                if (colon == 35 && line.AsSpan(0, 35).Equals(hash.AsSpan(5), StringComparison.OrdinalIgnoreCase))
                {
                    return int.TryParse(line.AsSpan(colon + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var count) ? count : 0;
                }
            }

            return 0;
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            logger.LogWarning("The breached-password API could not be reached ({Error}): the password is taken unchecked.", e.Message);
            return null;
        }
    }
}

/// <summary>
/// Refuses a new password found in a known breach where the tenant's policy says so (<c>passwords.rejectBreached</c>,
/// or <c>passwords.checkBreachedAtSignIn</c>: a password refused at sign-in cannot be set again).
/// If the API cannot be asked, the password is taken unchecked (logged): an outage elsewhere does not stop sign-ups
/// and resets. One question per password per request, however many times it is validated.
/// </summary>
public sealed class BreachedPasswordValidator(PwnedPasswordsClient pwned, TenantContext tenant, PolicyStore policies) : IPasswordValidator<AppUser>
{
    public const string Message = "This password has appeared in a data breach, so attackers try it first: choose another.";

    private (string Password, int? Count)? _last;

    public async Task<IdentityResult> ValidateAsync(UserManager<AppUser> manager, AppUser user, string? password)
    {
        if (string.IsNullOrEmpty(password) || password.Length > UserSecurity.MaxPasswordLength || tenant.Tenant is not { } current
            || (await policies.GetAsync(current, CancellationToken.None)).Passwords is not ({ RejectBreached: true } or { CheckBreachedAtSignIn: true }))
        {
            return IdentityResult.Success;
        }

        if (_last is not { } last || !string.Equals(last.Password, password, StringComparison.Ordinal))
        {
            last = (password, await pwned.CountAsync(password, CancellationToken.None));
            _last = last;
        }

        return last.Count > 0
            ? IdentityResult.Failed(new IdentityError { Code = "PasswordBreached", Description = Message })
            : IdentityResult.Success;
    }
}
