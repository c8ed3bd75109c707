using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;
using OpenIddict.Abstractions;

namespace IdentityService.SignIn.Pages;

/// <summary>
/// Asks a signed-in person whether a third-party client may have the scopes it requests. An answer of
/// "allow" is remembered (a permanent authorization, apart from any token family); "deny" is handed to
/// the authorization endpoint, which answers the client with access_denied.
/// </summary>
public sealed class ConsentModel(
    IOpenIddictApplicationManager applications, IOpenIddictAuthorizationManager authorizations, UserManager<Users.AppUser> users, TimeProvider time) : PageModel
{
    public const string DeniedKey = "consent_denied";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    /// <summary>The scopes asked, when the request returned to is a pushed one (its URL has only its client and request_uri).</summary>
    [BindProperty(SupportsGet = true)]
    public string? Scope { get; set; }

    public string ClientName { get; private set; } = "";

    public IReadOnlyList<string> Scopes { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync() => await LoadAsync() is null ? RedirectToPage("Error") : Page();

    public async Task<IActionResult> OnPostAsync(string? decision)
    {
        // The session must still stand for its account: one a new password or "sign out everywhere" ended keeps nothing.
        var application = await LoadAsync();
        var account = await HttpContext.SignedInAccountAsync(users);
        if (application is null || account is null)
        {
            return RedirectToPage("Error");
        }

        var returnUrl = ReturnUrls.Sanitize(Request, ReturnUrl);
        if (decision != "allow")
        {
            TempData[DeniedKey] = await applications.GetClientIdAsync(application);
            return LocalRedirect(returnUrl);
        }

        var subject = account.Id.ToString();
        var consent = new OpenIddictAuthorizationDescriptor
        {
            ApplicationId = await applications.GetIdAsync(application),
            CreationDate = time.GetUtcNow(),
            Status = OpenIddictConstants.Statuses.Valid,
            Subject = subject,
            Type = OpenIddictConstants.AuthorizationTypes.Permanent,
        };
        consent.Scopes.UnionWith(Scopes);
        await authorizations.CreateAsync(consent);
        return LocalRedirect(returnUrl);
    }

    private async Task<object?> LoadAsync()
    {
        if (string.IsNullOrEmpty(ReturnUrl) || !Uri.TryCreate(new Uri("http://local"), ReturnUrl, out var returnUri))
        {
            return null;
        }

        var query = QueryHelpers.ParseQuery(returnUri.Query);
        var clientId = query.TryGetValue("client_id", out var ids) ? ids.ToString() : null;
        var application = string.IsNullOrEmpty(clientId) ? null : await applications.FindByClientIdAsync(clientId);
        if (application is null)
        {
            return null;
        }

        ClientName = await applications.GetDisplayNameAsync(application) ?? clientId!;

        // Only what the client may ask for is shown and remembered: the return URL is the browser's to change, and a
        // consent to a scope the client lacks would wait, kept, for the day it is granted one. The protocol scopes
        // need no permission, as OpenIddict's own check has it.
        var scopes = new List<string>();
        foreach (var scope in (query.TryGetValue("scope", out var requested) ? requested.ToString() : Scope ?? "")
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal))
        {
            if (scope is OpenIddictConstants.Scopes.OpenId or OpenIddictConstants.Scopes.OfflineAccess
                || await applications.HasPermissionAsync(application, OpenIddictConstants.Permissions.Prefixes.Scope + scope))
            {
                scopes.Add(scope);
            }
        }

        Scopes = scopes;
        return application;
    }
}
