using System.Security.Claims;
using IdentityService.Audit;
using IdentityService.Oidc;
using IdentityService.Policy;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// The device page, RFC 8628's verification URI (OpenIddict's end-user verification endpoint): a signed-in person
/// types the code that a TV or a command-line tool shows, or arrives with it in the link the device shows, sees which
/// app asks for what, and allows or denies it. The device, polling the token endpoint, then gets its tokens or
/// <c>access_denied</c>. OpenIddict checks the code on every request here and lets it be answered once.
/// </summary>
/// <remarks>
/// The code is never approved by opening a link: the page always shows the code and asks, as the RFC advises (a link
/// with a code can be sent to anyone). The device authorization request made a token family (an authorization without a
/// subject); allowing gives it this person, so that the device's tokens are listed with the person's apps and are
/// revoked with them.
/// </remarks>
public sealed class DeviceModel(
    UserManager<AppUser> users,
    UserClaims claims,
    IOpenIddictApplicationManager applications,
    IOpenIddictAuthorizationManager authorizations,
    PolicyStore policies,
    TenantContext tenant,
    AuditLog audit) : PageModel
{
    public const string ResultKey = "device_result";

    [BindProperty(Name = "user_code", SupportsGet = true)]
    public string? UserCode { get; set; }

    /// <summary>The app that asks, once a valid code is given.</summary>
    public string? ClientName { get; private set; }

    public IReadOnlyList<string> Scopes { get; private set; } = [];

    public string? Error { get; private set; }

    /// <summary><c>allowed</c> or <c>denied</c>: the answer just given, shown once.</summary>
    public string? Result { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (await ElsewhereAsync() is { Elsewhere: { } redirect })
        {
            return redirect;
        }

        Result = TempData[ResultKey] as string;
        await LoadRequestAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string? decision)
    {
        var (user, elsewhere) = await ElsewhereAsync();
        if (user is null || elsewhere is not null)
        {
            return elsewhere!;
        }

        var (request, application) = await LoadRequestAsync();
        if (request is null || application is null || decision is not ("allow" or "deny"))
        {
            // A code typed in (or one no longer valid): the page shows what it asks, or says why not.
            return Page();
        }

        var clientId = request.GetClaim(Claims.ClientId);
        var home = Request.PathBase + "/device";
        if (decision == "deny")
        {
            await audit.AccountActionAsync(HttpContext, tenant.Required, user, AuditEventTypes.UserDeviceDenied, new { client = clientId });
            TempData[ResultKey] = "denied";
            return Forbid(new AuthenticationProperties { RedirectUri = home }, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        if (await FamilyAsync(request, user) is not { } family)
        {
            Error = "This code was already used. Start again on your device to get a new one.";
            ClientName = null;
            return Page();
        }

        var resources = Clients.ResourcesFor(request.GetResources(), application, Scopes, tenant.Required) ?? [];
        // The session ElsewhereAsync read (the cookie handler reads it once per request): its sign-in time and methods.
        var session = (await HttpContext.GetSessionAsync())!;
        var principal = await claims.CreatePrincipalAsync(UserProfile.Of(user), Scopes, resources, session.GetAuthTime(), session.FindAll(IdentityService.SignIn.Session.AmrClaim).Select(c => c.Value));
        principal.SetAuthorizationId(family);
        await audit.AccountActionAsync(HttpContext, tenant.Required, user, AuditEventTypes.UserDeviceAuthorized, new { client = clientId, scopes = Scopes });
        TempData[ResultKey] = "allowed";
        return SignIn(principal, new AuthenticationProperties { RedirectUri = home }, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>The signed-in person, or where they must go first: the sign-in page, or the tenant's terms if due.</summary>
    private async Task<(AppUser? User, IActionResult? Elsewhere)> ElsewhereAsync()
    {
        Response.Headers.CacheControl = "no-store";
        if (await HttpContext.SignedInAccountAsync(users) is not { } user)
        {
            // Back here after it with the code the device's link gave (a typed code is typed again).
            return (null, Redirect(ReturnUrls.SignInThenBackTo(Request, Here())));
        }

        return (user, await TermsToAcceptAsync(user) is { } terms ? Redirect(terms) : null);
    }

    private string Here() => Request.PathBase + "/device"
        + (HttpMethods.IsGet(Request.Method) && !string.IsNullOrEmpty(UserCode) ? QueryString.Create("user_code", UserCode).ToString() : "");

    private async Task<string?> TermsToAcceptAsync(AppUser user)
    {
        var terms = (await policies.GetAsync(tenant.Required, HttpContext.RequestAborted)).Terms;
        return terms.IsDueFor(user.AcceptedTermsUrl) ? $"{Request.PathBase}/terms?ReturnUrl={Uri.EscapeDataString(Here())}" : null;
    }

    /// <summary>
    /// The device authorization request the code stands for, as OpenIddict validated it (null without a code, or for a
    /// code that is unknown, expired or answered), and its client; sets what the page shows.
    /// </summary>
    private async Task<(ClaimsPrincipal? Request, object? Application)> LoadRequestAsync()
    {
        var result = await HttpContext.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var request = result.Succeeded ? result.Principal : null;
        var application = request?.GetClaim(Claims.ClientId) is { Length: > 0 } clientId ? await applications.FindByClientIdAsync(clientId) : null;
        if (request is null || application is null)
        {
            if (!string.IsNullOrWhiteSpace(UserCode))
            {
                Error = "That code is not valid, or it has expired. Check the code on your device, or start again there.";
            }

            return (null, null);
        }

        UserCode = result.Properties?.GetTokenValue(OpenIddictServerAspNetCoreConstants.Tokens.UserCode) ?? UserCode;
        ClientName = await applications.GetDisplayNameAsync(application) ?? request.GetClaim(Claims.ClientId);
        Scopes = [.. request.GetScopes()];
        return (request, application);
    }

    /// <summary>
    /// The token family the device authorization request made, given to this person: its id, or null when another person
    /// has it already (two people allowing the same code: only the first one's tokens are issued).
    /// </summary>
    private async Task<string?> FamilyAsync(ClaimsPrincipal request, AppUser user)
    {
        var subject = user.Id.ToString();
        if (request.GetAuthorizationId() is not { Length: > 0 } id || await authorizations.FindByIdAsync(id) is not { } family)
        {
            return null;
        }

        var current = await authorizations.GetSubjectAsync(family);
        if (string.IsNullOrEmpty(current))
        {
            var descriptor = new OpenIddictAuthorizationDescriptor();
            await authorizations.PopulateAsync(descriptor, family);
            descriptor.Subject = subject;
            await authorizations.UpdateAsync(family, descriptor);
        }
        else if (current != subject)
        {
            return null;
        }

        return id;
    }
}
