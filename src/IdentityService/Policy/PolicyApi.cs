using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityService.Management;
using IdentityService.Tenancy;

namespace IdentityService.Policy;

/// <summary>
/// <c>/api/v1/tenants/{tenant}/policy</c>: GET, PUT (the whole document) and PATCH (JSON merge patch).
/// Validated as a whole: a bad field is a 400 naming it, and nothing is stored. Secrets are write-only:
/// never answered, and kept when a PUT or PATCH leaves them out.
/// </summary>
internal static class PolicyApi
{
    public static RouteGroupBuilder MapPolicy(this RouteGroupBuilder api)
    {
        var policy = api.MapGroup("/tenants/{tenant}/policy").AddEndpointFilter(new ManagementAccess(systemOnly: false));
        policy.MapGet("", GetAsync);
        policy.MapPut("", PutAsync);
        policy.MapPatch("", PatchAsync);
        return api;
    }

    private static async Task<IResult> GetAsync(HttpContext http, TenantContext tenantContext, PolicyStore store) =>
        Results.Json(PolicyStore.Redact(await store.GetAsync(tenantContext.Required, http.RequestAborted)), PolicyStore.Json);

    private static async Task<IResult> PutAsync(HttpContext http, TenantContext tenantContext, PolicyStore store)
    {
        var body = await JsonBody.ReadAsync<JsonObject>(http.Request);
        return body.Error ?? await SaveAsync(http, tenantContext.Required, store, body.Value!, merge: false);
    }

    private static async Task<IResult> PatchAsync(HttpContext http, TenantContext tenantContext, PolicyStore store)
    {
        var body = await JsonBody.ReadAsync<JsonObject>(http.Request, "application/merge-patch+json", "application/json");
        return body.Error ?? await SaveAsync(http, tenantContext.Required, store, body.Value!, merge: true);
    }

    private static async Task<IResult> SaveAsync(HttpContext http, Tenant tenant, PolicyStore store, JsonObject body, bool merge)
    {
        var current = await store.GetAsync(tenant, http.RequestAborted);
        var document = merge ? PolicyStore.MergePatch(JsonSerializer.SerializeToNode(current, PolicyStore.Json), body) : body;
        TenantPolicy? policy;
        try
        {
            policy = document.Deserialize<TenantPolicy>(PolicyStore.Json);
        }
        catch (JsonException e)
        {
            var path = string.IsNullOrEmpty(e.Path) ? "$" : e.Path.TrimStart('$', '.');
            return Problems.Validation(path.Length == 0 ? "$" : path,
                e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? "This field is not known." : "This field has the wrong type.");
        }

        if (policy is null)
        {
            return Problems.Validation("$", "The policy must be a JSON object.");
        }

        // Write-only secrets: an answer never carries them, so a document sent back without them keeps them.
        policy.Captcha ??= new CaptchaPolicy();
        policy.Captcha.SecretKey ??= current.Captcha.SecretKey;
        policy.Captcha.ApiKey ??= current.Captcha.ApiKey;
        if (policy.Email?.Smtp is { } smtp)
        {
            // A password sent is protected before it is stored; the one kept (left out, or the stored form a merge
            // patch carries over) stays as it is.
            // It is kept only for the same server and account: a password is never sent anywhere it was not given for
            // (pointing the host, port or user name elsewhere would hand the stored one to that server at the next mail).
            var before = current.Email.Smtp;
            var sameServer = before is not null && string.Equals(before.Host, smtp.Host, StringComparison.OrdinalIgnoreCase)
                && before.Port == smtp.Port && before.UserName == smtp.UserName;
            if (smtp.Password is null || smtp.Password == before?.Password)
            {
                smtp.Password = sameServer ? before!.Password : null;
                if (smtp.Password is null && before?.Password is not null && smtp.UserName is not null)
                {
                    return Problems.Validation("email.smtp.password", "Give the password again when the server's host, port or user name changes.");
                }
            }
            else
            {
                smtp.Password = http.RequestServices.GetRequiredService<Email.Mailer>().ProtectPassword(smtp.Password);
            }
        }

        var errors = PolicyValidator.Validate(policy);
        if (policy.Email?.Smtp?.Host is { } smtpHost && !errors.ContainsKey("email.smtp.host")
            && !http.RequestServices.GetRequiredService<IHostEnvironment>().IsDevelopment() && !Protection.PublicAddresses.MayBePublic(smtpHost))
        {
            errors["email.smtp.host"] = ["email.smtp.host must be a public address."];
        }

        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }

        try
        {
            await store.SaveAsync(tenant, policy, Audit.AuditLog.Actor(http.User), Protection.IpRanges.ClientOf(http).ToString(), http.RequestAborted);
        }
        catch (Microsoft.EntityFrameworkCore.DbUpdateException)
        {
            // Two first saves of a tenant's policy at once both insert its row; the second is told to read and retry.
            return Problems.Conflict("concurrent_change", "The policy was changed by another request meanwhile: read it again and retry.");
        }

        return Results.Json(PolicyStore.Redact(policy), PolicyStore.Json);
    }
}
