using System.Reflection;
using IdentityService.Tenancy;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;

namespace IdentityService.Oidc;

/// <summary>
/// A tenant's OpenIddict server options: a shallow copy of the one template OpenIddict built and validated,
/// with the tenant's keys and token lifetimes. Everything else (about 400 handler descriptors, the
/// endpoints, the supported grants, scopes and claims) is shared by every tenant and never changed after
/// the template is built, so a tenant's options cost about a kilobyte, not ten, and a fraction of the CPU.
/// </summary>
internal static class TenantServerOptions
{
    private static readonly Func<object, object> ShallowCopy =
        typeof(object).GetMethod(nameof(MemberwiseClone), BindingFlags.Instance | BindingFlags.NonPublic)!
            .CreateDelegate<Func<object, object>>();

    // These three are get-only properties in OpenIddict: a copy gets its own through their backing fields.
    private static readonly Action<OpenIddictServerOptions, List<SigningCredentials>> SetSigning =
        BackingFieldSetter<List<SigningCredentials>>(nameof(OpenIddictServerOptions.SigningCredentials));

    private static readonly Action<OpenIddictServerOptions, List<EncryptingCredentials>> SetEncryption =
        BackingFieldSetter<List<EncryptingCredentials>>(nameof(OpenIddictServerOptions.EncryptionCredentials));

    private static readonly Action<OpenIddictServerOptions, TokenValidationParameters> SetValidation =
        BackingFieldSetter<TokenValidationParameters>(nameof(OpenIddictServerOptions.TokenValidationParameters));

    public static OpenIddictServerOptions For(OpenIddictServerOptions template, Tenant tenant, TenantKeySet keys)
    {
        var options = (OpenIddictServerOptions)ShallowCopy(template);

        // As OpenIddict orders them: the encryption key in use first; signing keys as the key set lists them.
        var encryption = new List<EncryptingCredentials>(keys.Decryption.Count + 1) { keys.Encryption };
        encryption.AddRange(keys.Decryption.Where(k => k != keys.Encryption));
        var signing = new List<SigningCredentials>(keys.Signing);
        SetEncryption(options, encryption);
        SetSigning(options, signing);

        var validation = template.TokenValidationParameters.Clone();
        // The internal keys verify codes and refresh tokens; they are not signing credentials, so never published.
        validation.IssuerSigningKeys = [.. signing.ConvertAll(c => c.Key), .. keys.InternalValidation.Select(c => c.Key)];
        validation.TokenDecryptionKeys = encryption.ConvertAll(c => c.Key);
        SetValidation(options, validation);

        options.AccessTokenLifetime = TimeSpan.FromSeconds(tenant.AccessTokenLifetimeSeconds);
        options.IdentityTokenLifetime = TimeSpan.FromSeconds(tenant.IdentityTokenLifetimeSeconds);
        options.RefreshTokenLifetime = TimeSpan.FromSeconds(tenant.RefreshTokenLifetimeSeconds);
        options.AuthorizationCodeLifetime = TimeSpan.FromSeconds(tenant.AuthorizationCodeLifetimeSeconds);
        options.RefreshTokenReuseLeeway = TimeSpan.FromSeconds(tenant.RefreshTokenReuseLeewaySeconds);
        return options;
    }

    private static Action<OpenIddictServerOptions, T> BackingFieldSetter<T>(string property)
    {
        var field = typeof(OpenIddictServerOptions).GetField($"<{property}>k__BackingField", BindingFlags.Instance | BindingFlags.NonPublic);
        if (field is null || field.FieldType != typeof(T))
        {
            throw new InvalidOperationException(
                $"OpenIddictServerOptions.{property} is no longer an auto-property of type {typeof(T).Name}: the per-tenant copy must be revised for this OpenIddict version.");
        }

        // The field is read-only (an auto-property without a setter): only reflection writes it, on a fresh copy.
        return (options, value) => field.SetValue(options, value);
    }
}
