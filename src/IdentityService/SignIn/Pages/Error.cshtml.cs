using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Server.AspNetCore;

namespace IdentityService.SignIn.Pages;

/// <summary>Shows an OpenID Connect error that cannot be sent back to a client (an unknown client or redirect URI).</summary>
[IgnoreAntiforgeryToken]
public sealed class ErrorModel : PageModel
{
    public string Message { get; private set; } = "The request could not be completed.";

    public void OnGet() => Describe();

    public void OnPost() => Describe();

    private void Describe()
    {
        var response = HttpContext.GetOpenIddictServerResponse();
        if (response is not null)
        {
            // Re-executed for an error status (401 invalid_token, 403 insufficient_scope...): keep it.
            if (Response.StatusCode < StatusCodes.Status400BadRequest)
            {
                Response.StatusCode = StatusCodes.Status400BadRequest;
            }

            Message = string.IsNullOrEmpty(response.ErrorDescription) ? response.Error ?? Message : response.ErrorDescription;
        }
    }
}
