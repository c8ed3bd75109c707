using IdentityService.Data;
using IdentityService.Diagnostics;
using IdentityService.Management;
using IdentityService.Oidc;
using IdentityService.Pipeline;
using IdentityService.Protection.Redis;
using IdentityService.SignIn;
using IdentityService.Tenancy;
using IdentityService.Users;
using Scalar.AspNetCore;

var builder = WebApplication.CreateBuilder(args);

builder.Services.AddHostingAndSecurity(builder.Configuration, builder.Environment);
builder.Services.AddData(builder.Configuration);
builder.Services.AddTenancy();
builder.Services.AddUsers();
builder.Services.AddSessionCookie();
builder.Services.AddOidc(builder.Environment);
builder.Services.AddSignInPages();
builder.Services.AddSignInPipeline();
builder.Services.AddRedisWhenConfigured(builder.Configuration);
builder.Services.AddManagement();
builder.Services.AddDiagnostics();

var app = builder.Build();

// `dotnet IdentityService.dll migrate`: for operators who set Database:MigrateAtStart to false.
if (args.Contains("migrate"))
{
    await app.Services.GetRequiredService<DatabaseInitializer>().InitializeAsync(migrate: true, CancellationToken.None);
    return;
}

app.UseHostingAndSecurity();
app.UseTenancy();
app.UseMiddleware<IdentityService.Audit.ErrorAlerts>();
app.UseMiddleware<IdentityService.Protection.RequestRateLimiting>();
app.UseMiddleware<DiscoveryCache>();
app.UseCors();
app.UseSignInErrorPages();
app.UseManagementErrorBodies();
app.UseMiddleware<FormBodies>();
app.UseRouting();
app.UseAuthentication();
app.UseAuthorization();
app.UseAntiforgery();

app.MapDiagnostics();
app.MapOidc();
app.MapSignInPages();
app.MapManagement();
app.MapOpenApi("/openapi/{documentName}.json");
app.MapScalarApiReference("/api/reference");

app.Run();

/// <summary>The entry point, visible to the integration tests' factory.</summary>
public partial class Program;
