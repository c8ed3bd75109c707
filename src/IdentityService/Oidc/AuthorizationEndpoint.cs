using System.Security.Claims;
using IdentityService.SignIn;
using IdentityService.SignIn.Pages;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.ViewFeatures;
using Microsoft.Extensions.Primitives;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Oidc;

/// <summary>
/// The authorization endpoint, after OpenIddict has validated the client, redirect URI, PKCE and scopes:
/// signs the person in (or sends them to the sign-in page), asks consent of third-party clients, and
/// issues the code. No authorization id is attached to the principal, so OpenIddict makes one ad-hoc
/// authorization per sign-in: the token family that a refresh-token reuse revokes, apart from the
/// remembered consent and from the same user's sign-ins on other devices.
/// </summary>
internal static class AuthorizationEndpoint
{
    public static async Task<IResult> HandleAsync(
        HttpContext context,
        TenantContext tenant,
        UserManager<AppUser> users,
        UserClaims claims,
        IOpenIddictApplicationManager applications,
        IOpenIddictAuthorizationManager authorizations,
        ITempDataDictionaryFactory tempData,
        TimeProvider time)
    {
        var request = context.GetOpenIddictServerRequest();
        if (request is null)
        {
            return Results.NotFound();
        }

        // A pushed request (RFC 9126) comes back here after each page with its request_uri, its parameters unchanged:
        // a prompt is then met by what happened since the client pushed it, not taken out of the URL.
        var pushedAt = PushedAt(context, request);
        var session = await context.GetSessionAsync();
        var authTime = session?.GetAuthTime();

        // prompt=create (Initiating User Registration via OpenID Connect): the sign-up page, where the tenant takes
        // sign-ups; back here after it, without the prompt. Elsewhere the request goes on as without it.
        if (request.HasPromptValue(PromptValues.Create) && !Since(pushedAt, authTime)
            && await context.RequestServices.GetRequiredService<SignUps>().AvailableAsync(context.RequestAborted))
        {
            var afterSignUp = BuildUrl(context.Request, request, without: [Parameters.Prompt]);
            var signUp = $"{context.Request.PathBase}/signup?ReturnUrl={Uri.EscapeDataString(afterSignUp)}";
            return Results.Redirect(string.IsNullOrEmpty(request.LoginHint) ? signUp : signUp + "&login_hint=" + Uri.EscapeDataString(request.LoginHint));
        }

        var now = time.GetUtcNow();
        var mustSignIn = session is null
            || (request.HasPromptValue(PromptValues.Login) && !Since(pushedAt, authTime))
            || (request.MaxAge is { } maxAge && (authTime is null || (now - authTime.Value).TotalSeconds > maxAge));
        AppUser? user = null;
        if (!mustSignIn && Guid.TryParse(session!.FindFirstValue("sub"), out var userId))
        {
            user = await users.FindByIdAsync(userId.ToString());
            if (user is not null && !session!.IsCurrentFor(user))
            {
                // The password was set since this session began (a reset, an admin): it no longer signs anyone in.
                user = null;
            }
        }

        // OpenID Connect Core 3.1.2.1: a client naming the person by an ID token it holds (silent renewal) gets them or
        // nothing: another person signed in here (or a hint the service cannot read) is as no one signed in.
        if (user is not null && !string.IsNullOrEmpty(request.IdTokenHint) && Authenticated(context)?.IdentityTokenPrincipal?.GetClaim(Claims.Subject) != user.Id.ToString())
        {
            user = null;
        }

        if (user is null)
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Forbid(Errors.LoginRequired, "The user is not signed in.");
            }

            // Back to this endpoint after sign-in, without what forced the sign-in, so it is not asked again.
            // The hint too: whoever signs in now is who the person chose to be.
            var returnUrl = BuildUrl(context.Request, request, without: [Parameters.Prompt, Parameters.MaxAge, Parameters.IdTokenHint]);
            var login = ReturnUrls.SignInThenBackTo(context.Request, returnUrl);
            if (!string.IsNullOrEmpty(request.LoginHint))
            {
                login += "&login_hint=" + Uri.EscapeDataString(request.LoginHint);
            }

            return Results.Redirect(login);
        }

        // Terms of service the account has not accepted (newer ones, or an account an admin made), where the tenant asks.
        var terms = (await context.RequestServices.GetRequiredService<Policy.PolicyStore>().GetAsync(tenant.Required, context.RequestAborted)).Terms;
        if (terms.IsDueFor(user.AcceptedTermsUrl))
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Forbid(Errors.InteractionRequired, "The user has not accepted the current terms of service.");
            }

            var returnUrl = BuildUrl(context.Request, request, without: [Parameters.Prompt]);
            return Results.Redirect($"{context.Request.PathBase}/terms?ReturnUrl={Uri.EscapeDataString(returnUrl)}");
        }

        var application = await applications.FindByClientIdAsync(request.ClientId!)
            ?? throw new InvalidOperationException("OpenIddict validated a client that does not exist.");
        var scopes = request.GetScopes().ToList();

        var temp = tempData.GetTempData(context);
        if (temp.TryGetValue(ConsentModel.DeniedKey, out var denied) && denied as string == request.ClientId)
        {
            temp.Remove(ConsentModel.DeniedKey);
            temp.Save();
            return Forbid(Errors.AccessDenied, "The user denied the request.");
        }

        if (!await IsFirstPartyAsync(application))
        {
            // prompt=consent asks again: met by a consent given since the request was pushed (a plain request comes
            // back from the consent page without the prompt).
            var askAgain = request.HasPromptValue(PromptValues.Consent);
            var consented = false;
            await foreach (var authorization in authorizations.FindAsync(
                subject: user.Id.ToString(), client: await applications.GetIdAsync(application),
                status: Statuses.Valid, type: AuthorizationTypes.Permanent, scopes: [.. scopes]))
            {
                if (!askAgain || Since(pushedAt, await authorizations.GetCreationDateAsync(authorization)))
                {
                    consented = true;
                    break;
                }
            }

            if (!consented)
            {
                if (request.HasPromptValue(PromptValues.None))
                {
                    return Forbid(Errors.ConsentRequired, "The user has not consented to this client.");
                }

                var returnUrl = BuildUrl(context.Request, request, without: [Parameters.Prompt]);
                var consent = $"{context.Request.PathBase}/consent?ReturnUrl={Uri.EscapeDataString(returnUrl)}";
                // The consent page reads the scopes from the request it returns to; a pushed one's are not in its URL.
                return Results.Redirect(pushedAt is null ? consent : consent + "&scope=" + Uri.EscapeDataString(string.Join(' ', scopes)));
            }
        }

        var resources = Clients.ResourcesFor(request, application, scopes, tenant.Required);
        if (resources is null)
        {
            return Forbid(Errors.InvalidTarget, "A resource is not one of this tenant's API resources.");
        }

        var principal = await claims.CreatePrincipalAsync(UserProfile.Of(user), scopes, resources, authTime,
            session!.FindAll(SignIn.Session.AmrClaim).Select(c => c.Value), session.FindFirst(SignIn.Session.SessionIdClaim)?.Value);
        return Results.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);

        async Task<bool> IsFirstPartyAsync(object app) =>
            app is TenantApplication entity && entity.FirstParty;
    }

    internal static IResult Forbid(string error, string description) => Results.Forbid(
        new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }),
        [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);

    /// <summary>
    /// When the client pushed this request (RFC 9126, the request has a <c>request_uri</c>): the pushed request's
    /// creation time, from the request token OpenIddict read it from. Null for a request made in the URL.
    /// </summary>
    private static DateTimeOffset? PushedAt(HttpContext context, OpenIddictRequest request) =>
        string.IsNullOrEmpty(request.RequestUri) ? null
            : Authenticated(context)?.RequestTokenPrincipal?.GetCreationDate()
              ?? throw new InvalidOperationException("OpenIddict accepted a request_uri without a request token.");

    /// <summary>What OpenIddict read and validated of the request's tokens (its <c>request_uri</c>'s request token, its <c>id_token_hint</c>).</summary>
    private static OpenIddictServerEvents.ProcessAuthenticationContext? Authenticated(HttpContext context) =>
        context.Features.Get<OpenIddictServerAspNetCoreFeature>()?.Transaction?
            .GetProperty<OpenIddictServerEvents.ProcessAuthenticationContext>(typeof(OpenIddictServerEvents.ProcessAuthenticationContext).FullName!);

    /// <summary>Whether something happened (a sign-in, a consent) since the pushed request was made, to the second (auth_time's precision).</summary>
    private static bool Since(DateTimeOffset? pushedAt, DateTimeOffset? at) =>
        pushedAt is { } pushed && at is { } done && done.ToUnixTimeSeconds() >= pushed.ToUnixTimeSeconds();

    /// <summary>
    /// Where a page sends the person back to: this endpoint with the request's parameters, less those already met. A
    /// pushed request goes back as it came, its client id and request_uri, which stay the whole request.
    /// </summary>
    private static string BuildUrl(HttpRequest http, OpenIddictRequest request, string[] without)
    {
        if (!string.IsNullOrEmpty(request.RequestUri))
        {
            return http.PathBase + http.Path + Microsoft.AspNetCore.Http.QueryString.Create(new Dictionary<string, string?>
            {
                [Parameters.ClientId] = request.ClientId, [Parameters.RequestUri] = request.RequestUri,
            });
        }

        var parameters = request.GetParameters()
            .Where(p => !without.Contains(p.Key, StringComparer.Ordinal))
            .Select(p => new KeyValuePair<string, StringValues>(p.Key, (StringValues)p.Value));
        return http.PathBase + http.Path + Microsoft.AspNetCore.Http.QueryString.Create(parameters);
    }
}
