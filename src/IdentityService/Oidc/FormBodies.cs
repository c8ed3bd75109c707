using Microsoft.AspNetCore.Diagnostics;

namespace IdentityService.Oidc;

/// <summary>
/// A form sent to a tenant's endpoint or page is read once, here, before anything else reads it (page binding reads
/// a form sent with a GET too). A form that cannot be read (a charset .NET refuses, such as UTF-7; a NUL or other
/// invalid character; more fields, or longer keys or values, than ASP.NET Core's limits; a body cut short) is the
/// caller's error, answered as the endpoint's own errors are: an OAuth <c>invalid_request</c> from the back-channel
/// endpoints (token, userinfo, introspection, revocation), the tenant's error page on anything a person sees
/// (authorize, end session, the sign-in pages). Read later by OpenIddict or by page binding, the same failure escaped
/// as an exception: a 500, or a bare 400.
/// </summary>
internal sealed class FormBodies(RequestDelegate next)
{
    private static readonly PathString[] BackChannel = ["/connect/token", "/connect/userinfo", "/connect/introspect", "/connect/revoke"];

    public async Task InvokeAsync(HttpContext context)
    {
        if (context.Features.Get<TenantOidcState>() is null
            || !context.Request.HasFormContentType
            || context.Features.Get<IStatusCodeReExecuteFeature>() is not null
            || await ReadAsync(context) is not null)
        {
            await next(context);
            return;
        }

        var failure = context.Features.Get<UnreadableForm>()!;
        context.Response.StatusCode = failure.Status;
        if (BackChannel.Any(path => context.Request.Path.StartsWithSegments(path, StringComparison.OrdinalIgnoreCase)))
        {
            context.Response.Headers.CacheControl = "no-store";
            await context.Response.WriteAsJsonAsync(new Dictionary<string, string>
            {
                ["error"] = "invalid_request",
                ["error_description"] = failure.Description,
            });
        }

        // Elsewhere the status alone: the tenant's error page (SignInSetup.UseSignInErrorPages) answers it.
    }

    /// <summary>
    /// The request's form, read once for everything that reads it after (ASP.NET Core keeps it); null when it
    /// cannot be read, a failure kept for this middleware to answer.
    /// </summary>
    public static async Task<IFormCollection?> ReadAsync(HttpContext context)
    {
        if (context.Features.Get<UnreadableForm>() is not null)
        {
            return null;
        }

        try
        {
            return await context.Request.ReadFormAsync(context.RequestAborted);
        }
        catch (BadHttpRequestException e)
        {
            context.Features.Set(new UnreadableForm(e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? "The request's body is larger than this server takes." : "The request's body could not be read in full."));
        }
        catch (IOException)
        {
            context.Features.Set(new UnreadableForm(StatusCodes.Status400BadRequest, "The request's body could not be read in full."));
        }
        catch (InvalidDataException)
        {
            context.Features.Set(new UnreadableForm(StatusCodes.Status400BadRequest, "The form is malformed or past this server's limits."));
        }
        catch (Exception e) when (e is NotSupportedException or ArgumentException)
        {
            // A charset .NET does not decode (UTF-7) or does not know.
            context.Features.Set(new UnreadableForm(StatusCodes.Status400BadRequest, "The form's charset is not supported: send UTF-8."));
        }

        return null;
    }

    private sealed record UnreadableForm(int Status, string Description);
}
