using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>Leaves requests outside any tenant (<c>/api</c>, <c>/health</c>, a bare <c>/connect/token</c>) to the rest of the app.</summary>
internal sealed class SkipRequestsOutsideTenants : IOpenIddictServerHandler<ProcessRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessRequestContext>()
            .UseSingletonHandler<SkipRequestsOutsideTenants>()
            .SetOrder(int.MinValue)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessRequestContext context)
    {
        if (context.Transaction.GetHttpRequest()?.HttpContext.Features.Get<TenantOidcState>() is null)
        {
            context.SkipRequest();
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Picks the tenant's key per token type: ID tokens RS256 (which OpenID Connect requires every provider
/// to support), access tokens the tenant's algorithm (ES256 by default, ten times cheaper to sign).
/// Codes, which only this service reads, are signed with the tenant's internal HMAC key (a fraction of ES256's
/// cost to sign and to verify) and encrypted with its current encryption key; so were refresh tokens, which are now
/// sealed instead (<see cref="SealedRefreshTokens"/>) unless they have a row.
/// </summary>
internal sealed class SelectTenantCredentials : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
            .UseSingletonHandler<SelectTenantCredentials>()
            .SetOrder(OpenIddictServerHandlers.Protection.AttachSecurityCredentials.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        var state = context.Transaction.TenantState();
        var keys = state.Keys;
        context.SigningCredentials = context.TokenType switch
        {
            OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.IdentityToken => keys.Rsa,
            OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.AccessToken =>
                state.Tenant.AccessTokenAlgorithm == TenantKeyRing.Rs256 ? keys.Rsa : keys.Ecdsa,
            OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.RefreshToken
                or OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.AuthorizationCode
                or OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.DeviceCode
                or OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.UserCode
                or OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.Private.RequestToken => keys.Internal,
            _ => keys.Ecdsa,
        };
        if (context.EncryptionCredentials is not null)
        {
            context.EncryptionCredentials = keys.Encryption;
        }

        return ValueTask.CompletedTask;
    }
}

internal static class OidcTransactions
{
    /// <summary>The services of the HTTP request an OpenIddict event belongs to (the request's scope: its tenant, its database context).</summary>
    public static IServiceProvider RequestServices(this OpenIddictServerTransaction transaction) =>
        transaction.GetHttpRequest()?.HttpContext.RequestServices
        ?? throw new InvalidOperationException("An OpenIddict event outside any HTTP request.");

    /// <summary>The OpenID Connect state of the tenant an OpenIddict event belongs to (its keys, its options).</summary>
    public static TenantOidcState TenantState(this OpenIddictServerTransaction transaction) =>
        transaction.GetHttpRequest()?.HttpContext.Features.Get<TenantOidcState>()
        ?? throw new InvalidOperationException("An OpenIddict event outside any tenant.");
}

/// <summary>
/// Tells which endpoint a request is for, as OpenIddict's <c>InferEndpointType</c> does (the same endpoints in the
/// same order, paths compared ignoring case and a trailing slash), without building an absolute URI for every
/// endpoint on every request: OpenIddict made eight or nine URIs and URI builders per token request (a tenth of its
/// allocations). Endpoint URIs relative to the issuer that are plain paths are compared as strings with the request
/// path; any other (absolute, or with dots, escapes or a leading slash) goes through OpenIddict's own comparison.
/// </summary>
internal sealed class InferEndpointTypeByPath : IOpenIddictServerHandler<ProcessRequestContext>
{
    private static readonly OpenIddictServerHandlers.InferEndpointType OpenIddicts = new();

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessRequestContext>()
            .UseSingletonHandler<InferEndpointTypeByPath>()
            .SetOrder(OpenIddictServerHandlers.InferEndpointType.Descriptor.Order)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessRequestContext context)
    {
        var options = context.Options;
        if (context is not { BaseUri.IsAbsoluteUri: true, RequestUri.IsAbsoluteUri: true } || !AllPlain(options))
        {
            return OpenIddicts.HandleAsync(context);
        }

        var basePath = context.BaseUri.AbsolutePath;
        var requestPath = context.RequestUri.AbsolutePath;
        context.EndpointType =
            Matches(options.AuthorizationEndpointUris) ? OpenIddictServerEndpointType.Authorization :
            Matches(options.ConfigurationEndpointUris) ? OpenIddictServerEndpointType.Configuration :
            Matches(options.DeviceAuthorizationEndpointUris) ? OpenIddictServerEndpointType.DeviceAuthorization :
            Matches(options.EndSessionEndpointUris) ? OpenIddictServerEndpointType.EndSession :
            Matches(options.EndUserVerificationEndpointUris) ? OpenIddictServerEndpointType.EndUserVerification :
            Matches(options.IntrospectionEndpointUris) ? OpenIddictServerEndpointType.Introspection :
            Matches(options.JsonWebKeySetEndpointUris) ? OpenIddictServerEndpointType.JsonWebKeySet :
            Matches(options.PushedAuthorizationEndpointUris) ? OpenIddictServerEndpointType.PushedAuthorization :
            Matches(options.RevocationEndpointUris) ? OpenIddictServerEndpointType.Revocation :
            Matches(options.TokenEndpointUris) ? OpenIddictServerEndpointType.Token :
            Matches(options.UserInfoEndpointUris) ? OpenIddictServerEndpointType.UserInfo :
            OpenIddictServerEndpointType.Unknown;
        if (context.EndpointType is not OpenIddictServerEndpointType.Unknown)
        {
            context.Logger.LogInformation("The request was identified as a {EndpointType} request.", context.EndpointType);
        }

        return ValueTask.CompletedTask;

        bool Matches(List<Uri> candidates)
        {
            foreach (var candidate in candidates)
            {
                if (SamePath(basePath, candidate.OriginalString, requestPath))
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>
    /// Whether the request path is the base path (with a slash added, as OpenIddict adds one) followed by the
    /// endpoint's path, ignoring case, either of them possibly with one more trailing slash.
    /// </summary>
    internal static bool SamePath(ReadOnlySpan<char> basePath, ReadOnlySpan<char> endpoint, ReadOnlySpan<char> requestPath)
    {
        var slash = basePath.Length == 0 || basePath[^1] != '/' ? 1 : 0;
        var expected = basePath.Length + slash + endpoint.Length;
        if (requestPath.Length < expected - 1 || requestPath.Length > expected + 1
            || !requestPath.StartsWith(basePath, StringComparison.OrdinalIgnoreCase)
            || (slash == 1 && (requestPath.Length == basePath.Length || requestPath[basePath.Length] != '/')))
        {
            return false;
        }

        var rest = requestPath[(basePath.Length + slash)..];
        return rest.Equals(endpoint, StringComparison.OrdinalIgnoreCase)
            || (rest.Length == endpoint.Length + 1 && rest[^1] == '/' && rest[..^1].Equals(endpoint, StringComparison.OrdinalIgnoreCase))
            || (endpoint.Length == rest.Length + 1 && endpoint[^1] == '/' && endpoint[..^1].Equals(rest, StringComparison.OrdinalIgnoreCase));
    }

    // Every tenant's options share the template's endpoint lists (TenantServerOptions): checked once per set of lists,
    // found by the token endpoint's list.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<List<Uri>, object> Plain = [];

    private static bool AllPlain(OpenIddictServerOptions options)
    {
        if (Plain.TryGetValue(options.TokenEndpointUris, out var known))
        {
            return (bool)known;
        }

        var plain = new[]
        {
            options.AuthorizationEndpointUris, options.ConfigurationEndpointUris, options.DeviceAuthorizationEndpointUris,
            options.EndSessionEndpointUris, options.EndUserVerificationEndpointUris, options.IntrospectionEndpointUris,
            options.JsonWebKeySetEndpointUris, options.PushedAuthorizationEndpointUris, options.RevocationEndpointUris, options.TokenEndpointUris, options.UserInfoEndpointUris,
        }.All(list => list.All(IsPlainRelativePath));
        Plain.AddOrUpdate(options.TokenEndpointUris, plain);
        return plain;
    }

    /// <summary>A relative URI made of path segments of unreserved characters only: resolved against a base, it is the base's path, a slash, and itself.</summary>
    internal static bool IsPlainRelativePath(Uri uri)
    {
        var path = uri.OriginalString;
        if (uri.IsAbsoluteUri || path.Length == 0 || path[0] == '/')
        {
            return false;
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment is "." or "..")
            {
                return false;
            }
        }

        foreach (var c in path)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '/'))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// Leaves the user's profile claims (name, email, phone, roles...) out of authorization and device codes and refresh tokens.
/// Only this service reads those, and its token endpoint builds the new tokens' claims from the user's current record
/// at every exchange and refresh (<see cref="TokenEndpoint"/>); the subject, the authentication time and OpenIddict's
/// own claims (scopes, resources, presenters, the authorization) stay. Smaller tokens to encrypt, sign, decrypt and
/// parse on every refresh, and no personal data inside a long-lived token.
/// </summary>
internal sealed class SlimInternalTokens : IOpenIddictServerHandler<ProcessSignInContext>
{
    private static readonly HashSet<string> ProfileClaims = new(StringComparer.OrdinalIgnoreCase)
    {
        OpenIddictConstants.Claims.Name, OpenIddictConstants.Claims.GivenName, OpenIddictConstants.Claims.FamilyName,
        OpenIddictConstants.Claims.Locale, OpenIddictConstants.Claims.UpdatedAt, OpenIddictConstants.Claims.Email,
        OpenIddictConstants.Claims.EmailVerified, OpenIddictConstants.Claims.PhoneNumber,
        OpenIddictConstants.Claims.PhoneNumberVerified, OpenIddictConstants.Claims.Role,
    };

    /// <summary>After the last of the principals it slims is prepared, before any token is generated.</summary>
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .UseSingletonHandler<SlimInternalTokens>()
            .SetOrder(OpenIddictServerHandlers.PrepareRefreshTokenPrincipal.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        Slim(context.AuthorizationCodePrincipal);
        Slim(context.DeviceCodePrincipal);
        Slim(context.RefreshTokenPrincipal);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Takes the profile claims out of the principal itself: OpenIddict made it for this token alone (a filtered copy of
    /// the signed-in principal, with copies of its claims), so nothing else sees the change, and a second copy per token
    /// is not made. Actors' identities too, as the copy it replaces filtered them.
    /// </summary>
    private static void Slim(System.Security.Claims.ClaimsPrincipal? principal)
    {
        foreach (var identity in principal?.Identities ?? [])
        {
            for (var current = identity; current is not null; current = current.Actor)
            {
                List<System.Security.Claims.Claim>? profile = null;
                foreach (var claim in current.Claims)
                {
                    if (ProfileClaims.Contains(claim.Type))
                    {
                        (profile ??= []).Add(claim);
                    }
                }

                foreach (var claim in profile ?? [])
                {
                    current.RemoveClaim(claim);
                }
            }
        }
    }
}

/// <summary>
/// Puts the access token's and the code's hashes (<c>at_hash</c>, <c>c_hash</c>) in the ID token, as OpenIddict's
/// <c>AttachTokenDigests</c> does, with the hash of the ID token's own algorithm (SHA-256 for RS256) taken with
/// <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/>. OpenIddict's asks <c>CryptoConfig</c> for a
/// provider by name on every hash (a type look-up by string that finds nothing): 0.9% of a refresh's samples in a
/// perf profile, more than the hash itself.
/// </summary>
internal sealed class AttachTokenDigestsOfIdentityToken : IOpenIddictServerHandler<ProcessSignInContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .AddFilter<OpenIddictServerHandlerFilters.RequireIdentityTokenGenerated>()
            .UseSingletonHandler<AttachTokenDigestsOfIdentityToken>()
            .SetOrder(OpenIddictServerHandlers.AttachTokenDigests.Descriptor.Order)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ProcessSignInContext context)
    {
        var principal = context.IdentityTokenPrincipal
            ?? throw new InvalidOperationException("The identity token principal was not created.");
        if (string.IsNullOrEmpty(context.AccessToken) && string.IsNullOrEmpty(context.AuthorizationCode))
        {
            return ValueTask.CompletedTask;
        }

        var algorithm = context.Transaction.TenantState().Keys.Rsa.Algorithm;
        if (!string.IsNullOrEmpty(context.AccessToken))
        {
            principal.SetClaim(OpenIddictConstants.Claims.AccessTokenHash, LeftHalfOfHash(algorithm, context.AccessToken));
        }

        if (!string.IsNullOrEmpty(context.AuthorizationCode))
        {
            principal.SetClaim(OpenIddictConstants.Claims.CodeHash, LeftHalfOfHash(algorithm, context.AuthorizationCode));
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Base64url of the left half of the token's hash, the token taken as ASCII (OpenID Connect Core 3.1.3.6 and
    /// 3.3.2.11), with the hash of the signing algorithm: SHA-256 for RS256, ES256 and PS256, and so on.
    /// </summary>
    internal static string LeftHalfOfHash(string algorithm, string token)
    {
        var ascii = Encoding.ASCII.GetBytes(token);
        Span<byte> hash = stackalloc byte[SHA512.HashSizeInBytes];
        var length = algorithm switch
        {
            _ when algorithm.EndsWith("256", StringComparison.Ordinal) => SHA256.HashData(ascii, hash),
            _ when algorithm.EndsWith("384", StringComparison.Ordinal) => SHA384.HashData(ascii, hash),
            _ when algorithm.EndsWith("512", StringComparison.Ordinal) => SHA512.HashData(ascii, hash),
            _ => throw new InvalidOperationException($"No token hash is defined for the signing algorithm {algorithm}."),
        };
        return Base64Url.EncodeToString(hash[..(length / 2)]);
    }
}
