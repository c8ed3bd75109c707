using System.Security.Cryptography;
using IdentityService.Policy;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Mvc.Filters;

namespace IdentityService.SignIn;

/// <summary>
/// The headers every page a person sees carries: a Content Security Policy that runs only the page's own scripts
/// (each with this response's nonce) and Google's reCAPTCHA, loads nothing from elsewhere, and lets no other site
/// show the page in a frame (a sign-in or consent page framed by another site could be clicked through by a person
/// who cannot see it); the same refusal for browsers without CSP, no content sniffing, no referrer. Images come
/// from the service (and <c>data:</c>), and from the origin of the tenant's logo (<c>branding.logoUrl</c>).
/// </summary>
/// <remarks>
/// No <c>form-action</c>: a sign-in form posts here, and its answer redirects on to the client's redirect URI, which
/// browsers check against that directive too. Styles may be inline (reCAPTCHA sets style attributes). The
/// authorization, end-session and form_post answers are OpenIddict's, not pages, and carry none of this: a client's
/// hidden frame with <c>prompt=none</c> never shows a page.
/// </remarks>
public sealed class PageSecurityHeaders : IAsyncPageFilter
{
    private const string NonceKey = "IdentityService.CspNonce";

    /// <summary>Where reCAPTCHA's script, frames and pictures come from (Google's documented CSP sources).</summary>
    private const string Recaptcha = "https://www.google.com/recaptcha/ https://www.gstatic.com/recaptcha/";

    private const string BrandingKey = "IdentityService.Branding";

    // The policy's fixed parts; only the nonce and the tenant's logo origin change between responses.
    private const string ScriptsFrom = "default-src 'none'; script-src ";
    private const string ImagesFrom = "style-src 'unsafe-inline'; img-src 'self' data: https://www.gstatic.com/recaptcha/";
    private const string TheRest = "connect-src 'self' https://www.google.com/recaptcha/; "
        + "frame-src https://www.google.com/recaptcha/ https://recaptcha.google.com/recaptcha/; frame-ancestors 'none'; base-uri 'none'";

    /// <summary>This response's nonce, for a page's <c>&lt;script nonce&gt;</c>: 128 random bits, new for every response.</summary>
    public static string Nonce(HttpContext context)
    {
        if (context.Items[NonceKey] is not string nonce)
        {
            nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            context.Items[NonceKey] = nonce;
        }

        return nonce;
    }

    /// <summary>The tenant's branding, read once per page by this filter for its header and the layout alike.</summary>
    public static BrandingPolicy? Branding(HttpContext context) => context.Items[BrandingKey] as BrandingPolicy;

    public async Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context)
    {
        var http = context.HttpContext;
        var branding = http.RequestServices.GetRequiredService<TenantContext>().Tenant is { } tenant
            ? (await http.RequestServices.GetRequiredService<PolicyStore>().GetAsync(tenant, http.RequestAborted)).Branding
            : null;
        http.Items[BrandingKey] = branding;
        var logo = branding?.LogoOrigin;
        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = $"{ScriptsFrom}'nonce-{Nonce(http)}' {Recaptcha}; {ImagesFrom}{(logo is null ? "" : " " + logo)}; {TheRest}";
        headers.XFrameOptions = "DENY";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
    }

    public Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next) => next();
}
