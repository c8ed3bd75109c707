using System.Net;
using System.Text.Json;
using IdentityService.Oidc;
using IdentityService.Tenancy;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace IdentityService.Management;

/// <summary>
/// A client's settings as the management API takes them, validated and turned into OpenIddict permissions:
/// endpoints, grant types, scopes, resources, redirect URIs, and the service's own fields.
/// </summary>
internal static class ClientSettings
{
    private static readonly string[] KnownGrants = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken, GrantTypes.ClientCredentials, GrantTypes.DeviceCode, GrantTypes.TokenExchange];
    private static readonly string[] KnownScopes = [Scopes.OpenId, Scopes.Profile, Scopes.Email, Scopes.Phone, Scopes.OfflineAccess, Scopes.Roles, Clients.ManageScope];

    /// <param name="development">Whether the service runs in Development, where the URLs the service calls (jwksUri, backchannelLogoutUri) may be plain http on this machine.</param>
    public static void Apply(
        OpenIddictApplicationDescriptor descriptor, TenantApplication entity, ClientsApi.ClientBody request, Tenant tenant, Dictionary<string, string[]> errors, bool creating, bool development)
    {
        if (request.DisplayName is not null)
        {
            if (request.DisplayName.Length > 200 || request.DisplayName.Any(char.IsControl))
            {
                errors["displayName"] = ["displayName must be at most 200 characters, none of them a control character."];
            }

            descriptor.DisplayName = request.DisplayName;
        }

        var grants = request.GrantTypes ?? (creating ? [GrantTypes.AuthorizationCode] : descriptor.Permissions
            .Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal))
            .Select(p => p[Permissions.Prefixes.GrantType.Length..]).ToList());
        if (grants.Count == 0 || grants.Any(g => !KnownGrants.Contains(g)))
        {
            errors["grantTypes"] = [$"grantTypes must be among: {string.Join(", ", KnownGrants)}."];
        }

        var isPublic = descriptor.ClientType == ClientTypes.Public;
        if (isPublic && grants.Contains(GrantTypes.ClientCredentials))
        {
            errors["grantTypes"] = ["A public client (no secret) cannot use client_credentials."];
        }

        if (isPublic && grants.Contains(GrantTypes.TokenExchange))
        {
            errors["grantTypes"] = ["A public client (no secret) cannot exchange tokens: only an API's back end, which authenticates, can."];
        }

        if (request.Jwks is { } jwks)
        {
            var (keys, error) = isPublic ? (null, "A public client has no credentials: create a client with jwks (or a secret) to authenticate it.") : ClientKeys.Parse(jwks);
            if (error is not null)
            {
                errors["jwks"] = [error];
            }

            descriptor.JsonWebKeySet = keys;
            if (request.JwksUri is null)
            {
                entity.JwksUri = null;
            }
        }

        if (request.JwksUri is { } jwksUri)
        {
            if (request.Jwks is not null && jwksUri.Length > 0)
            {
                errors["jwksUri"] = ["Give jwks or jwksUri, not both."];
            }
            else if (jwksUri.Length > 0 && isPublic)
            {
                errors["jwksUri"] = ["A public client has no credentials: create a client with jwksUri (or a secret) to authenticate it."];
            }
            else if (jwksUri.Length > 0 && AddressError("jwksUri", jwksUri, development) is { } error)
            {
                errors["jwksUri"] = [error];
            }

            entity.JwksUri = jwksUri.Length > 0 ? jwksUri : null;
            if (entity.JwksUri is not null)
            {
                descriptor.JsonWebKeySet = null;
            }
        }

        // A confidential client authenticates with a secret or keys: a change may replace its credential, not take the last one away.
        if (!creating && !isPublic && string.IsNullOrEmpty(descriptor.ClientSecret) && descriptor.JsonWebKeySet is null && entity.JwksUri is null)
        {
            errors[request.JwksUri is not null ? "jwksUri" : "jwks"] = ["A confidential client needs a credential: give it jwks, a jwksUri or a new secret (POST .../secret) before taking this one away."];
        }

        var scopes = request.Scopes ?? (creating ? [Scopes.OpenId] : descriptor.Permissions
            .Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal))
            .Select(p => p[Permissions.Prefixes.Scope.Length..]).ToList());
        if (scopes.Any(s => !KnownScopes.Contains(s)))
        {
            errors["scopes"] = [$"scopes must be among: {string.Join(", ", KnownScopes)}."];
        }

        var resources = request.Resources ?? (creating ? [] : descriptor.Permissions
            .Where(p => p.StartsWith(Permissions.Prefixes.Resource, StringComparison.Ordinal))
            .Select(p => p[Permissions.Prefixes.Resource.Length..]).ToList());
        if (resources.Any(r => !tenant.ApiResources.Contains(r)))
        {
            errors["resources"] = ["Each resource must be one of the tenant's apiResources."];
        }

        if (request.RedirectUris is not null || creating)
        {
            descriptor.RedirectUris.Clear();
            foreach (var (uri, index) in (request.RedirectUris ?? []).Select((u, i) => (u, i)))
            {
                if (ParseRedirectUri(uri) is { } parsed)
                {
                    descriptor.RedirectUris.Add(parsed);
                }
                else
                {
                    errors[$"redirectUris[{index}]"] = ["A redirect URI must be absolute, without fragment: https, http on loopback only, or a custom scheme for native apps."];
                }
            }
        }

        if (grants.Contains(GrantTypes.AuthorizationCode) && descriptor.RedirectUris.Count == 0 && !errors.Keys.Any(k => k.StartsWith("redirectUris", StringComparison.Ordinal)))
        {
            errors["redirectUris"] = ["The authorization_code grant needs at least one redirect URI."];
        }

        if (request.PostLogoutRedirectUris is not null || creating)
        {
            descriptor.PostLogoutRedirectUris.Clear();
            foreach (var (uri, index) in (request.PostLogoutRedirectUris ?? []).Select((u, i) => (u, i)))
            {
                if (ParseRedirectUri(uri) is { } parsed)
                {
                    descriptor.PostLogoutRedirectUris.Add(parsed);
                }
                else
                {
                    errors[$"postLogoutRedirectUris[{index}]"] = ["A post-logout redirect URI must be absolute, without fragment: https, http on loopback only, or a custom scheme."];
                }
            }
        }

        if (request.AllowedOrigins is { } origins)
        {
            if (origins.Any(o => !Uri.TryCreate(o, UriKind.Absolute, out var u) || u.Scheme is not ("https" or "http") || u.PathAndQuery != "/" || o.EndsWith('/')))
            {
                errors["allowedOrigins"] = ["Each origin is scheme://host[:port], without path."];
            }

            entity.AllowedOrigins = JsonSerializer.Serialize(origins.Distinct(StringComparer.OrdinalIgnoreCase));
        }

        if (request.DefaultAudiences is { } audiences)
        {
            if (audiences.Any(a => string.IsNullOrWhiteSpace(a) || a.Length > 400))
            {
                errors["defaultAudiences"] = ["Each audience is a non-empty string of at most 400 characters."];
            }

            entity.DefaultAudiences = JsonSerializer.Serialize(audiences.Distinct(StringComparer.Ordinal));
        }

        if (request.ServedResources is { } served)
        {
            if (served.Any(a => !tenant.ApiResources.Contains(a)))
            {
                errors["servedResources"] = ["Each served resource must be one of the tenant's apiResources."];
            }

            entity.ServedResources = served.Count > 0 ? JsonSerializer.Serialize(served.Distinct(StringComparer.Ordinal)) : null;
        }

        if (entity.ServedResources is not null && isPublic)
        {
            errors["servedResources"] = ["A public client (no secret) cannot be an API's back end: it could not authenticate to introspect or exchange its tokens."];
        }

        if (request.FirstParty is { } firstParty)
        {
            entity.FirstParty = firstParty;
        }

        if (request.BackchannelLogoutUri is { } logoutUri)
        {
            if (logoutUri.Length > 0 && AddressError("backchannelLogoutUri", logoutUri, development) is { } error)
            {
                errors["backchannelLogoutUri"] = [error];
            }

            entity.BackchannelLogoutUri = logoutUri.Length > 0 ? logoutUri : null;
        }

        if (request.BackchannelLogoutSessionRequired is { } sessionRequired)
        {
            entity.BackchannelLogoutSessionRequired = sessionRequired;
        }

        if (entity.BackchannelLogoutUri is not null && !grants.Contains(GrantTypes.AuthorizationCode) && !grants.Contains(GrantTypes.DeviceCode))
        {
            errors["backchannelLogoutUri"] = ["Only a client that signs people in (authorization_code or device_code) has sessions to be told the end of."];
        }

        var requirePushed = request.RequirePushedAuthorization ?? descriptor.Requirements.Contains(Requirements.Features.PushedAuthorizationRequests);
        if (requirePushed && !grants.Contains(GrantTypes.AuthorizationCode))
        {
            errors["requirePushedAuthorization"] = ["Only a client with the authorization_code grant makes authorization requests to push."];
        }

        if (errors.Count > 0)
        {
            return;
        }

        descriptor.Permissions.Clear();
        descriptor.Requirements.Clear();
        descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);
        if (requirePushed)
        {
            descriptor.Requirements.Add(Requirements.Features.PushedAuthorizationRequests);
        }

        descriptor.Permissions.Add(Permissions.Endpoints.Token);
        if (!isPublic)
        {
            descriptor.Permissions.UnionWith([Permissions.Endpoints.Introspection, Permissions.Endpoints.Revocation]);
        }
        else
        {
            descriptor.Permissions.Add(Permissions.Endpoints.Revocation);
        }

        foreach (var grant in grants.Distinct())
        {
            descriptor.Permissions.Add(Permissions.Prefixes.GrantType + grant);
        }

        if (grants.Contains(GrantTypes.AuthorizationCode))
        {
            // Every client that may send a person to sign in may push its request first (RFC 9126): clients such as
            // ASP.NET Core's OpenID Connect handler push whenever the discovery document names the endpoint.
            descriptor.Permissions.UnionWith([Permissions.Endpoints.Authorization, Permissions.Endpoints.PushedAuthorization, Permissions.Endpoints.EndSession, Permissions.ResponseTypes.Code]);
        }

        if (grants.Contains(GrantTypes.DeviceCode))
        {
            descriptor.Permissions.Add(Permissions.Endpoints.DeviceAuthorization);
        }

        foreach (var scope in scopes.Distinct().Where(s => s != Scopes.OpenId))
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }

        foreach (var resource in resources.Distinct())
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Resource + resource);
        }
    }

    /// <summary>
    /// Why a URL the service calls for the client cannot be <paramref name="field"/>, or null: the rules of a webhook's
    /// URL (https to a public address; in Development also http and this machine), with the field named.
    /// </summary>
    private static string? AddressError(string field, string url, bool development) =>
        Webhooks.WebhookAddresses.Check(url, development) is { } error ? field + error["url".Length..] : null;

    /// <summary>
    /// https anywhere; http only on a loopback host; otherwise a custom scheme (native apps). Never a fragment, a user
    /// name or password, white space or a control character: the URI is kept as written and compared exactly, and
    /// <see cref="Uri"/> would accept (trimmed, or escaped) what no client would send back the same.
    /// </summary>
    internal static Uri? ParseRedirectUri(string? value)
    {
        if (string.IsNullOrWhiteSpace(value) || value.Length > 2000 || value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
            || !Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Fragment.Length > 0 || value.Contains('#') || uri.UserInfo.Length > 0)
        {
            return null;
        }

        return uri.Scheme switch
        {
            "https" => uri,
            "http" => uri.IsLoopback || IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip) ? uri : null,
            "javascript" or "data" or "file" or "vbscript" or "ftp" or "ws" or "wss" => null,
            _ => uri.Scheme.Contains('.') || uri.Scheme.Length > 2 ? uri : null,
        };
    }
}
