using IdentityService.Tenancy;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace IdentityService.SignIn;

public static class SignInSetup
{
    /// <summary>The Razor Pages a person uses, in <c>SignIn/Pages</c>; they exist only under a tenant's prefix.</summary>
    public static IServiceCollection AddSignInPages(this IServiceCollection services)
    {
        services.AddRazorPages(options =>
        {
            options.RootDirectory = "/SignIn/Pages";
            options.Conventions.ConfigureFilter(new RequireTenantFilter());
            options.Conventions.ConfigureFilter(new PageSecurityHeaders());
        });

        // The pages bind plain names only. The jQuery-style providers throw ArgumentException on a form
        // key with an unbalanced '[' (any binary body), which would be a 500.
        services.Configure<Microsoft.AspNetCore.Mvc.MvcOptions>(options =>
        {
            options.ValueProviderFactories.RemoveType<JQueryFormValueProviderFactory>();
            options.ValueProviderFactories.RemoveType<JQueryQueryStringValueProviderFactory>();
        });
        return services;
    }

    /// <summary>
    /// An error without a body on a page a person sees (authorize, end session, the sign-in pages) shows the
    /// tenant's error page. Back-channel endpoints (token, userinfo, introspection, revocation) and discovery
    /// keep their protocol answers: a relying party reads those, not a person.
    /// </summary>
    public static IApplicationBuilder UseSignInErrorPages(this IApplicationBuilder app) =>
        app.UseWhen(
            context => context.Features.Get<Oidc.TenantOidcState>() is not null
                && !BackChannel.Any(path => context.Request.Path.StartsWithSegments(path, StringComparison.OrdinalIgnoreCase)),
            branch => branch.UseStatusCodePagesWithReExecute("/error"));

    private static readonly PathString[] BackChannel =
        ["/connect/token", "/connect/userinfo", "/connect/introspect", "/connect/revoke", "/.well-known"];

    public static IEndpointRouteBuilder MapSignInPages(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapRazorPages();
        return endpoints;
    }

    /// <summary>A page asked for outside <c>/t/{tenant}</c> does not exist.</summary>
    private sealed class RequireTenantFilter : IAsyncPageFilter
    {
        public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

        public async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
        {
            if (context.HttpContext.RequestServices.GetRequiredService<TenantContext>().Tenant is null)
            {
                context.Result = new Microsoft.AspNetCore.Mvc.NotFoundResult();
                return;
            }

            await next();
        }
    }
}
