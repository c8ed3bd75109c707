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

        // prompt=create (Initiating User Registration via OpenID Connect): the sign-up page, where the tenant takes
        // sign-ups; back here after it, without the prompt. Elsewhere the request goes on as without it.
        if (request.HasPromptValue(PromptValues.Create)
            && await context.RequestServices.GetRequiredService<SignUps>().AvailableAsync(context.RequestAborted))
        {
            var afterSignUp = BuildUrl(context.Request, request, without: [Parameters.Prompt]);
            var signUp = $"{context.Request.PathBase}/signup?ReturnUrl={Uri.EscapeDataString(afterSignUp)}";
            return Results.Redirect(string.IsNullOrEmpty(request.LoginHint) ? signUp : signUp + "&login_hint=" + Uri.EscapeDataString(request.LoginHint));
        }

        var session = await context.GetSessionAsync();
        var authTime = session?.GetAuthTime();
        var now = time.GetUtcNow();
        var mustSignIn = session is null
            || request.HasPromptValue(PromptValues.Login)
            || (request.MaxAge is { } maxAge && (authTime is null || authTime.Value.AddSeconds(maxAge) < now));
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

        if (user is null)
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Forbid(Errors.LoginRequired, "The user is not signed in.");
            }

            // Back to this endpoint after sign-in, without what forced the sign-in, so it is not asked again.
            var returnUrl = BuildUrl(context.Request, request, without: [Parameters.Prompt, Parameters.MaxAge]);
            var login = $"{context.Request.PathBase}/login?ReturnUrl={Uri.EscapeDataString(returnUrl)}";
            if (!string.IsNullOrEmpty(request.LoginHint))
            {
                login += "&login_hint=" + Uri.EscapeDataString(request.LoginHint);
            }

            return Results.Redirect(login);
        }

        // Terms of service the account has not accepted (newer ones, or an account an admin made), where the tenant asks.
        var terms = (await context.RequestServices.GetRequiredService<Policy.PolicyStore>().GetAsync(tenant.Required, context.RequestAborted)).Terms;
        if (terms is { AskAtSignIn: true, Url: { } termsUrl } && user.AcceptedTermsUrl != termsUrl)
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
            var consented = false;
            if (!request.HasPromptValue(PromptValues.Consent))
            {
                await foreach (var authorization in authorizations.FindAsync(
                    subject: user.Id.ToString(), client: await applications.GetIdAsync(application),
                    status: Statuses.Valid, type: AuthorizationTypes.Permanent, scopes: [.. scopes]))
                {
                    consented = authorization is not null;
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
                return Results.Redirect($"{context.Request.PathBase}/consent?ReturnUrl={Uri.EscapeDataString(returnUrl)}");
            }
        }

        var resources = Clients.ResourcesFor(request, application, scopes, tenant.Required);
        if (resources is null)
        {
            return Forbid(Errors.InvalidTarget, "A resource is not one of this tenant's API resources.");
        }

        var principal = await claims.CreatePrincipalAsync(UserProfile.Of(user), scopes, resources, authTime, session!.FindAll(SignIn.Session.AmrClaim).Select(c => c.Value));
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

    private static string BuildUrl(HttpRequest http, OpenIddictRequest request, string[] without)
    {
        var parameters = request.GetParameters()
            .Where(p => !without.Contains(p.Key, StringComparer.Ordinal))
            .Select(p => new KeyValuePair<string, StringValues>(p.Key, (StringValues)p.Value));
        return http.PathBase + http.Path + Microsoft.AspNetCore.Http.QueryString.Create(parameters);
    }
}
