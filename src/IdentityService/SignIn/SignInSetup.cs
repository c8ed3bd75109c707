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
