using System.Net.Mail;
using IdentityService.Audit;
using IdentityService.Data;
using IdentityService.Email;
using IdentityService.Pipeline;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Users;

/// <summary>
/// Self-service sign-up, where the tenant's <c>signUp.enabled</c> is on and its mail can be sent. The page's email
/// and password go through the sign-in pipeline's address checks (rate limit, IP rules and blocks, countries,
/// reCAPTCHA), the tenant's email domains and password rules; then a single-use link is mailed to the address, and
/// the account exists only once that link is used. The answer is the same whether or not the address has an
/// account (its owner is mailed that they have one instead), so sign-up tells no one who has an account.
/// </summary>
public sealed class SignUps(
    IdentityDb db, UserManager<AppUser> users, TenantContext tenant, PolicyStore policies, IProtectionStore protection,
    SignInPipeline pipeline, Mailer mailer, AuditLog audit, TimeProvider time, ILogger<SignUps> logger)
{
    /// <summary>Links an address may be sent per hour, whatever they are for: enough for a lost mail, too few to flood a mailbox.</summary>
    public const int LinksPerAddressPerHour = 5;

    /// <summary>Wrong passwords a link takes before it ends.</summary>
    public const int WrongPasswordsPerLink = 5;

    /// <summary>What a person typed and where from.</summary>
    public sealed record Request(
        string Email, string Password, HttpContext Http, string? CaptchaToken, string? DeviceId, string? ReturnUrl, string? Name = null, bool AcceptTerms = false);

    /// <summary>The answer to a sign-up: refused by a protection (which one is not said), the fields' errors, or sent.</summary>
    public sealed record Outcome(bool Refused, Dictionary<string, List<string>> Errors)
    {
        public bool Sent => !Refused && Errors.Count == 0;
    }

    /// <summary>What using a link did: the account made, or why none was.</summary>
    public enum Completion
    {
        Created,
        InvalidLink,
        AccountExists,

        /// <summary>Not the password chosen at sign-up: the link stays for the right one (a few times).</summary>
        WrongPassword,

        /// <summary>The tenant no longer takes sign-ups (or this address's domain).</summary>
        Closed,
    }

    /// <summary>Whether the tenant takes sign-ups: switched on, and mail can be sent for the link.</summary>
    public async Task<bool> AvailableAsync(CancellationToken cancellationToken) =>
        Available(await policies.GetAsync(tenant.Required, cancellationToken));

    private bool Available(TenantPolicy policy) => policy.SignUp.Enabled && mailer.IsConfiguredFor(policy);

    /// <summary>
    /// Checks a sign-up and, when it passes, mails the address a link that makes the account (or, for an address
    /// that has one, a note saying so).
    /// </summary>
    /// <param name="pages">The absolute URL of the tenant's pages, ending with '/'.</param>
    public async Task<Outcome> RequestAsync(Request request, string pages, CancellationToken cancellationToken)
    {
        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        var errors = new Dictionary<string, List<string>>();
        var email = request.Email.Trim();
        var ip = IpRanges.ClientOf(request.Http);
        var entry = new AuditEvent
        {
            Type = AuditEventTypes.SignUpRequested,
            Outcome = "failed",
            Ip = ip.ToString(),
            Identifier = email.Length > 256 ? email[..256] : email,
            UserAgent = request.Http.Request.Headers.UserAgent.ToString() is { Length: > 0 } agent ? agent[..Math.Min(agent.Length, 512)] : null,
        };

        if (!Available(policy))
        {
            entry.Reason = "signup_disabled";
            await audit.WriteAsync(tenant.Required, entry);
            return new Outcome(true, errors);
        }

        // The address checks of a sign-in, before anything costs: a blocked address signs up no more than it signs in.
        var screening = new SignInContext
        {
            Tenant = tenant.Required,
            Policy = policy,
            Http = request.Http,
            Email = email,
            Password = "",
            Ip = ip,
            UserAgent = entry.UserAgent,
            CaptchaToken = request.CaptchaToken,
            DeviceId = request.DeviceId,
        };
        // A sign-in with a low reCAPTCHA score may answer a second factor; a sign-up has none to answer, so that refuses too.
        if (await pipeline.ScreenAsync(screening, cancellationToken) is var (reason, step))
        {
            (entry.Reason, entry.DecidedBy) = (reason, step);
        }
        entry.Country = screening.Country;
        entry.Trace = System.Text.Json.JsonSerializer.Serialize(screening.Trace, AuditLog.Json);
        if (entry.Reason is not null)
        {
            await audit.WriteAsync(tenant.Required, entry);
            return new Outcome(true, errors);
        }

        var candidate = new AppUser { Email = email, UserName = email };
        if (!EmailAddresses.IsAcceptable(email, out var address))
        {
            errors["Email"] = ["Enter a valid email address."];
        }
        else if (policy.SignUp.AllowedEmailDomains.Count > 0 && !policy.SignUp.AllowedEmailDomains.Contains(address.Host.ToLowerInvariant()))
        {
            errors["Email"] = ["Accounts with this email address cannot be created here."];
        }
        else
        {
            // Identity's own checks of a new account (the characters a user name may hold), without its "taken" errors:
            // an address that has an account is answered as one that has none.
            foreach (var validator in users.UserValidators)
            {
                var result = await validator.ValidateAsync(users, candidate);
                if (result.Errors.Where(e => e.Code is not ("DuplicateEmail" or "DuplicateUserName")).Select(e => e.Description).ToList() is { Count: > 0 } refused)
                {
                    errors["Email"] = refused;
                }
            }
        }

        if (policy.SignUp.AskName)
        {
            var named = new Dictionary<string, string[]>();
            ProfileFields.Apply(candidate, request.Name?.Trim() ?? "", null, null, null, named, key => ProfileFields.Labels[key]);
            if (named.Count > 0 || candidate.Name is null)
            {
                errors["Name"] = named.Count > 0 ? [.. named["name"]] : ["Enter your name."];
            }
        }

        if (policy.Terms.Url is not null && !request.AcceptTerms)
        {
            errors["AcceptTerms"] = ["Accept the terms of service to create an account."];
        }

        var passwordErrors = await UserSecurity.CheckPasswordAsync(users, candidate, request.Password, policy.Passwords, tenant.Required);
        if (passwordErrors.Count > 0)
        {
            errors["Password"] = passwordErrors;
        }

        if (errors.Count > 0)
        {
            entry.Reason = "invalid_input";
            entry.Details = System.Text.Json.JsonSerializer.Serialize(new { fields = errors.Keys.Select(k => k.ToLowerInvariant()) }, AuditLog.Json);
            await audit.WriteAsync(tenant.Required, entry);
            return new Outcome(false, errors);
        }

        // Hashed whether or not the address has an account, so both answers take a hash's time.
        var passwordHash = users.PasswordHasher.HashPassword(candidate, request.Password);
        var normalized = users.NormalizeEmail(email);
        var existing = await users.FindByEmailAsync(email);
        var name = tenant.Required.DisplayName;
        if (await protection.IncrementAsync(tenant.Required.Id, $"rl:signup:{normalized}", TimeSpan.FromHours(1), cancellationToken) > LinksPerAddressPerHour)
        {
            entry.Reason = "too_many_links";
        }
        else if (existing is not null)
        {
            // The owner learns that someone tried; the person on the page learns nothing they could not already.
            var sent = mailer.Enqueue(policy, existing.Email!, $"You already have a {name} account",
                $"""
                Someone, probably you, tried to create a {name} account with this address ({existing.Email}). It already has one.

                To sign in, use your password. If you forgot it, ask for a new one here:

                {pages}forgot-password

                If you did not try to create an account, ignore this message: nothing has changed.
                """);
            entry.UserId = existing.Id;
            entry.Reason = sent ? "existing_account" : "mail_not_sent";
        }
        else
        {
            var token = OpaqueTokens.New();
            var now = time.GetUtcNow();
            await db.InTurnAsync(c => db.Set<PendingSignUp>().Where(p => p.NormalizedEmail == normalized && p.ExpiresAt <= now).ExecuteDeleteAsync(c), cancellationToken);
            db.Add(new PendingSignUp
            {
                Id = Guid.NewGuid(),
                Email = email,
                NormalizedEmail = normalized,
                PasswordHash = passwordHash,
                Name = policy.SignUp.AskName ? candidate.Name : null,
                TermsUrl = policy.Terms.Url,
                TokenHash = OpaqueTokens.Hash(token),
                ReturnUrl = request.ReturnUrl is { Length: > 0 and <= 2000 } returnUrl ? returnUrl : null,
                CreatedAt = now,
                ExpiresAt = now.AddMinutes(policy.SignUp.LinkLifetimeMinutes),
            });
            await db.SaveChangesAsync(cancellationToken);
            var link = QueryHelpers.AddQueryString(pages + "signup/confirm", "token", token);
            var sent = mailer.Enqueue(policy, email, $"Confirm your email address for {name}",
                $"""
                Someone, probably you, asked to create a {name} account with this address ({email}).

                To confirm the address and create the account, open this link within {policy.SignUp.LinkLifetimeMinutes} minutes. It works once:

                {link}

                If you did not ask for this, ignore this message: no account is created.
                """);
            entry.Outcome = sent ? "succeeded" : "failed";
            entry.Reason = sent ? null : "mail_not_sent";
        }

        await audit.WriteAsync(tenant.Required, entry);
        return new Outcome(false, errors);
    }

    /// <summary>The sign-up a link is for, while the link is unused and unexpired; null otherwise.</summary>
    public async Task<PendingSignUp?> FindAsync(string? token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return null;
        }

        var hash = OpaqueTokens.Hash(token);
        var row = await db.Set<PendingSignUp>().AsNoTracking().SingleOrDefaultAsync(p => p.TokenHash == hash, cancellationToken);
        return row is null || row.ExpiresAt <= time.GetUtcNow() ? null : row;
    }

    /// <summary>
    /// Makes the account of a link: its address confirmed, the password chosen at sign-up, which the person types
    /// again here. Whoever asked for the link must read the mailbox and know that password: the address's owner who
    /// opens the link a stranger asked for makes no account with the stranger's password. The link works once, while
    /// the tenant still takes sign-ups.
    /// </summary>
    public async Task<(Completion Completion, PendingSignUp? SignUp)> CompleteAsync(string? token, string? password, HttpContext http, CancellationToken cancellationToken)
    {
        var row = await FindAsync(token, cancellationToken);
        if (row is null)
        {
            return (Completion.InvalidLink, null);
        }

        var policy = await policies.GetAsync(tenant.Required, cancellationToken);
        var domains = policy.SignUp.AllowedEmailDomains;
        if (!policy.SignUp.Enabled || (domains.Count > 0 && !domains.Contains(row.Email[(row.Email.LastIndexOf('@') + 1)..].ToLowerInvariant())))
        {
            return (Completion.Closed, row);
        }

        if (password is not { Length: > 0 and <= 1024 }
            || users.PasswordHasher.VerifyHashedPassword(new AppUser { Email = row.Email, UserName = row.Email }, row.PasswordHash, password) == PasswordVerificationResult.Failed)
        {
            if (await protection.IncrementAsync(tenant.Required.Id, $"rl:signupconfirm:{row.Id}", TimeSpan.FromDays(1), cancellationToken) >= WrongPasswordsPerLink)
            {
                await db.InTurnAsync(c => db.Set<PendingSignUp>().Where(p => p.Id == row.Id).ExecuteDeleteAsync(c), cancellationToken);
            }

            return (Completion.WrongPassword, row);
        }

        // The link is claimed before it is used: of two requests racing with it, one makes the account.
        if (await db.InTurnAsync(c => db.Set<PendingSignUp>().Where(p => p.Id == row.Id).ExecuteDeleteAsync(c), cancellationToken) == 0)
        {
            return (Completion.InvalidLink, null);
        }

        // Every other link of the address is spent with this one, whatever comes of it.
        await db.InTurnAsync(c => db.Set<PendingSignUp>().Where(p => p.NormalizedEmail == row.NormalizedEmail).ExecuteDeleteAsync(c), cancellationToken);
        if (await users.FindByEmailAsync(row.Email) is not null)
        {
            return (Completion.AccountExists, row);
        }

        var user = new AppUser
        {
            Id = Guid.NewGuid(),
            Email = row.Email,
            UserName = row.Email,
            EmailConfirmed = true,
            PasswordHash = row.PasswordHash,
            Name = row.Name,
            AcceptedTermsUrl = row.TermsUrl,
            TermsAcceptedAt = row.TermsUrl is null ? null : row.CreatedAt,
            CreatedAt = time.GetUtcNow(),
        };
        IdentityResult result;
        try
        {
            result = await users.CreateAsync(user);
        }
        catch (DbUpdateException)
        {
            // Another request made the account between the lookup and this insert (the email is unique per tenant).
            return (Completion.AccountExists, row);
        }

        if (!result.Succeeded)
        {
            // The address was checked at sign-up; what is left is an account made for it meanwhile.
            logger.LogWarning("A confirmed sign-up made no account: {Errors}", string.Join(", ", result.Errors.Select(e => e.Code)));
            return (Completion.AccountExists, row);
        }

        await audit.AccountActionAsync(http, tenant.Required, user, AuditEventTypes.UserCreated, new { via = "signup", acceptedTerms = row.TermsUrl });
        return (Completion.Created, row);
    }
}
