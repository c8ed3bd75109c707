using IdentityService.Oidc;

namespace IdentityService.Tenancy;

/// <summary>
/// Turns <c>/t/{tenant}/rest</c> into PathBase <c>/t/{tenant}</c> and Path <c>/rest</c>, so that OpenIddict
/// infers the tenant's issuer from the path base and every page and endpoint of a tenant lives under it.
/// An unknown, suspended or malformed tenant id is a 404, never a redirect.
/// </summary>
internal sealed class TenantResolutionMiddleware(RequestDelegate next, TenantDirectory directory, TenantOidcStateCache states)
{
    private static readonly PathString Prefix = "/t";
    private static readonly PathString WellKnown = "/.well-known";

    public async Task InvokeAsync(HttpContext context, TenantContext tenantContext)
    {
        if (!context.Request.Path.StartsWithSegments(Prefix, StringComparison.Ordinal, out var rest))
        {
            await next(context);
            return;
        }

        var value = rest.Value ?? "";
        if (value.Length < 2)
        {
            // "/t" or "/t/": no tenant id at all.
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        var end = value.IndexOf('/', 1);
        var id = end < 0 ? value.TrimStart('/') : value[1..end];
        var tenant = await directory.FindAsync(id, context.RequestAborted);
        if (tenant is null || tenant.Suspended)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        tenantContext.Set(tenant);
        context.Features.Set(await states.GetAsync(tenant, context.RequestAborted));

        if (rest.StartsWithSegments(new PathString("/" + id).Add(WellKnown), StringComparison.Ordinal))
        {
            // Discovery and JWKS change rarely (a new key is published 48 hours before it signs): let clients cache them.
            context.Response.OnStarting(() =>
            {
                if (context.Response.StatusCode == StatusCodes.Status200OK)
                {
                    context.Response.Headers.CacheControl = "public, max-age=3600";
                }

                return Task.CompletedTask;
            });
        }

        var originalBase = context.Request.PathBase;
        var originalPath = context.Request.Path;
        context.Request.PathBase = originalBase.Add(Prefix).Add("/" + id);
        context.Request.Path = end < 0 ? PathString.Empty : new PathString(value[end..]);
        try
        {
            await next(context);
        }
        finally
        {
            context.Request.PathBase = originalBase;
            context.Request.Path = originalPath;
        }
    }
}
