using IdentityService.Audit;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace IdentityService.SignIn.Pages.Account;

/// <summary>
/// A signed-in person's profile: their name, given and family name and language, the claims apps read with the
/// <c>profile</c> scope, under the same rules as an admin's changes. A field left empty is cleared.
/// </summary>
public sealed class ProfileModel(UserManager<AppUser> users, EmailChanges emailChanges, TenantContext tenant, AuditLog audit, TimeProvider time) : PageModel
{
    [BindProperty]
    [FromForm]
    public string? Name { get; set; }

    [BindProperty]
    [FromForm]
    public string? GivenName { get; set; }

    [BindProperty]
    [FromForm]
    public string? FamilyName { get; set; }

    [BindProperty]
    [FromForm]
    public string? Locale { get; set; }

    public AppUser? Account { get; private set; }

    public bool Saved { get; private set; }

    /// <summary>Whether the address can be changed here (a link can be mailed to the new one).</summary>
    public bool CanChangeEmail { get; private set; }

    public Dictionary<string, string[]> Errors { get; } = [];

    private string LoginUrl => ReturnUrls.SignInHere(Request);

    public async Task<IActionResult> OnGetAsync()
    {
        Response.Headers.CacheControl = "no-store";
        if ((Account = await HttpContext.SignedInAccountAsync(users)) is not { } user)
        {
            return Redirect(LoginUrl);
        }

        (Name, GivenName, FamilyName, Locale) = (user.Name, user.GivenName, user.FamilyName, user.Locale);
        CanChangeEmail = await emailChanges.AvailableAsync(HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        Response.Headers.CacheControl = "no-store";
        if ((Account = await HttpContext.SignedInAccountAsync(users)) is not { } user)
        {
            return Redirect(LoginUrl);
        }

        CanChangeEmail = await emailChanges.AvailableAsync(HttpContext.RequestAborted);
        // A form posts every field: empty clears it, as the API's empty string does. Only what changed is saved.
        var before = (user.Name, user.GivenName, user.FamilyName, user.Locale);
        ProfileFields.Apply(user, (Name ?? "").Trim(), (GivenName ?? "").Trim(), (FamilyName ?? "").Trim(), (Locale ?? "").Trim(), Errors,
            key => ProfileFields.Labels[key]);
        if (Errors.Count > 0)
        {
            return Page();
        }

        var changed = new[] { ("name", before.Name != user.Name), ("givenName", before.GivenName != user.GivenName),
            ("familyName", before.FamilyName != user.FamilyName), ("locale", before.Locale != user.Locale) }.Where(f => f.Item2).Select(f => f.Item1).ToArray();
        if (changed.Length > 0)
        {
            user.UpdatedAt = time.GetUtcNow();
            var result = await users.UpdateAsync(user);
            if (!result.Succeeded)
            {
                Errors["profile"] = ["Your profile was changed elsewhere meanwhile. Reload the page and try again."];
                return Page();
            }

            await audit.AccountActionAsync(HttpContext, tenant.Required, user, AuditEventTypes.UserUpdated, new { fields = changed });
        }

        Saved = true;
        return Page();
    }
}
