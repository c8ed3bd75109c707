using System.Collections.Immutable;
using IdentityService.Data;
using IdentityService.Tenancy;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace IdentityService.Oidc;

/// <summary>
/// OpenIddict's application manager, plus:
/// <list type="bullet">
/// <item>clients read from <see cref="ClientCache"/> (<see cref="FindByClientIdAsync"/>, which OpenIddict and the
/// endpoints call several times per request), so that a known client costs no query; such an instance is shared
/// and read-only;</item>
/// <item><see cref="FindForChangeAsync"/>, the tracked row of this request's context, for code that changes a client;
/// every change evicts the client from the cache, here and on the other replicas;</item>
/// <item>secret rotation with an overlap window: after a rotation the previous secret keeps working until
/// <see cref="TenantApplication.PreviousSecretExpiresAt"/>.</item>
/// </list>
/// </summary>
internal sealed class TenantApplicationManager(
    IOpenIddictApplicationCache<TenantApplication> cache,
    ILogger<OpenIddictApplicationManager<TenantApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TenantApplication> store,
    VerifiedSecretCache verified,
    ClientCache clients,
    TenantContext tenant,
    IServiceProvider services,
    TimeProvider time,
    ClientKeySets keySets)
    : OpenIddictApplicationManager<TenantApplication>(cache, logger, options, store)
{
    // The client this request (this scoped manager) found, by client id: every later look-up in the request gets the
    // same one, even when the cache lets it go meanwhile (a background read that found it changed or deleted, a
    // change told by another replica). OpenIddict looks the client up several times per token request, and refuses
    // a request whose client vanishes between two look-ups with an exception: a 500 for a client that was valid
    // when the request began. A change made through this manager forgets it.
    private TenantApplication? _found;

    /// <summary>The scope's tenant's client, from the process-wide cache: shared, read-only; the same one for the whole request.</summary>
    public override async ValueTask<TenantApplication?> FindByClientIdAsync(string identifier, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        if (tenant.TenantId is not { } tenantId)
        {
            // No tenant: the query filters see no client at all.
            return await base.FindByClientIdAsync(identifier, cancellationToken);
        }

        if (_found is { } found && string.Equals(found.ClientId, identifier, StringComparison.Ordinal))
        {
            return found;
        }

        if (!clients.TryGet(tenant.Required, identifier, out var client))
        {
            var version = clients.Version;
            var db = services.GetRequiredService<IdentityDb>();
            var loaded = await ClientCache.LoadAsync(db, identifier, cancellationToken);
            if (loaded is null)
            {
                clients.Gone(tenantId, identifier);
            }
            else
            {
                client = clients.Add(tenantId, identifier, loaded, version, db.Model);
            }
        }

        if (client is not null)
        {
            _found = client;
        }

        return client;
    }

    /// <summary>The client as this request's context tracks it, read from the database: the one to change.</summary>
    public ValueTask<TenantApplication?> FindForChangeAsync(string identifier, CancellationToken cancellationToken = default) =>
        base.FindByClientIdAsync(identifier, cancellationToken);

    public override async ValueTask CreateAsync(TenantApplication application, string? secret, CancellationToken cancellationToken = default)
    {
        RefuseShared(application);
        await base.CreateAsync(application, secret, cancellationToken);
        await EvictAsync(application);
    }

    public override ValueTask PopulateAsync(TenantApplication application, OpenIddictApplicationDescriptor descriptor, CancellationToken cancellationToken = default)
    {
        RefuseShared(application);
        return base.PopulateAsync(application, descriptor, cancellationToken);
    }

    public override async ValueTask UpdateAsync(TenantApplication application, CancellationToken cancellationToken = default)
    {
        RefuseShared(application);
        await base.UpdateAsync(application, cancellationToken);
        await EvictAsync(application);
    }

    public override ValueTask UpdateAsync(TenantApplication application, string? secret, CancellationToken cancellationToken = default)
    {
        // Checked before the base sets the new secret's hash on the instance.
        RefuseShared(application);
        return base.UpdateAsync(application, secret, cancellationToken);
    }

    public override ValueTask UpdateAsync(TenantApplication application, OpenIddictApplicationDescriptor descriptor, CancellationToken cancellationToken = default)
    {
        RefuseShared(application);
        return base.UpdateAsync(application, descriptor, cancellationToken);
    }

    public override async ValueTask DeleteAsync(TenantApplication application, CancellationToken cancellationToken = default)
    {
        RefuseShared(application);
        await base.DeleteAsync(application, cancellationToken);
        await EvictAsync(application);
    }

    /// <summary>
    /// As OpenIddict's, where a client whose keys are published at its <c>jwks_uri</c> (fetched when its assertions
    /// arrive) meets the rule that a confidential client has a secret or keys: it is checked as if it held
    /// <see cref="PublishedKeysStandIn"/>, a public key no assertion can be signed with (its private part is discarded).
    /// </summary>
    public override async IAsyncEnumerable<System.ComponentModel.DataAnnotations.ValidationResult> ValidateAsync(
        TenantApplication application, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var published = !string.IsNullOrEmpty(application.JwksUri) && string.IsNullOrEmpty(application.JsonWebKeySet);
        if (published)
        {
            application.JsonWebKeySet = PublishedKeysStandIn.Value;
        }

        try
        {
            await foreach (var result in base.ValidateAsync(application, cancellationToken))
            {
                yield return result;
            }
        }
        finally
        {
            if (published)
            {
                application.JsonWebKeySet = null;
            }
        }
    }

    private static readonly Lazy<string> PublishedKeysStandIn = new(() =>
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var point = key.ExportParameters(includePrivateParameters: false).Q;
        return System.Text.Json.JsonSerializer.Serialize(new
        {
            keys = new[] { new { kty = "EC", crv = "P-256", use = "sig", x = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(point.X), y = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(point.Y) } },
        });
    });

    public override async ValueTask<bool> ValidateClientSecretAsync(TenantApplication application, string secret, CancellationToken cancellationToken = default)
    {
        if (await MatchesAsync(application, secret, application.ClientSecret, cancellationToken))
        {
            return true;
        }

        return application.PreviousClientSecret is { } previous
            && application.PreviousSecretExpiresAt > time.GetUtcNow()
            && await MatchesAsync(application, secret, previous, cancellationToken);
    }

    /// <summary>A cached client's permissions are parsed once and kept on the (read-only) instance; others as OpenIddict does.</summary>
    public override ValueTask<ImmutableArray<string>> GetPermissionsAsync(TenantApplication application, CancellationToken cancellationToken = default)
    {
        if (!application.IsSharedSnapshot)
        {
            return base.GetPermissionsAsync(application, cancellationToken);
        }

        return application.ParsedPermissions is { IsDefault: false } parsed ? new(parsed) : ParseAndKeepAsync();

        async ValueTask<ImmutableArray<string>> ParseAndKeepAsync()
        {
            var json = application.Permissions ?? "";
            if (!SharedPermissions.TryGet(json, out var permissions))
            {
                permissions = SharedPermissions.Share(json, await base.GetPermissionsAsync(application, cancellationToken));
            }

            application.ParsedPermissions = permissions;
            return permissions;
        }
    }

    /// <summary>
    /// The keys a client publishes at its <c>jwks_uri</c> as last fetched (<see cref="ClientKeySets"/>); a cached client's
    /// inline keys are parsed once and kept on the (read-only) instance; others as OpenIddict does.
    /// </summary>
    public override ValueTask<Microsoft.IdentityModel.Tokens.JsonWebKeySet?> GetJsonWebKeySetAsync(TenantApplication application, CancellationToken cancellationToken = default)
    {
        if (!string.IsNullOrEmpty(application.JwksUri))
        {
            return new(keySets.Held(application.TenantId, application.JwksUri));
        }

        if (!application.IsSharedSnapshot || string.IsNullOrEmpty(application.JsonWebKeySet))
        {
            return base.GetJsonWebKeySetAsync(application, cancellationToken);
        }

        return application.ParsedKeys is { } keys ? new(keys) : ParseAndKeepAsync();

        async ValueTask<Microsoft.IdentityModel.Tokens.JsonWebKeySet?> ParseAndKeepAsync() =>
            application.ParsedKeys = await base.GetJsonWebKeySetAsync(application, cancellationToken);
    }

    /// <summary>Clients with the same permissions (the same JSON) share one parsed set: 10,000 alike clients keep one.</summary>
    private static readonly SharedValues<ImmutableArray<string>> SharedPermissions = new();

    /// <summary>As OpenIddict's, over the permissions without boxing them into an enumerable.</summary>
    public override async ValueTask<bool> HasPermissionAsync(TenantApplication application, string permission, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(application);
        ArgumentException.ThrowIfNullOrEmpty(permission);
        foreach (var granted in await GetPermissionsAsync(application, cancellationToken))
        {
            if (string.Equals(granted, permission, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>One slow hash per client, secret and stored hash every few minutes, not one per request.</summary>
    private async ValueTask<bool> MatchesAsync(TenantApplication application, string secret, string? storedHash, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(storedHash) || application.ClientType != OpenIddictConstants.ClientTypes.Confidential)
        {
            return false;
        }

        if (verified.IsVerified(application.TenantId, application.ClientId!, secret, storedHash))
        {
            return true;
        }

        if (!await ValidateClientSecretAsync(secret, storedHash, cancellationToken))
        {
            return false;
        }

        verified.Remember(application.TenantId, application.ClientId!, secret, storedHash);
        return true;
    }

    /// <summary>The stored form of a secret, for keeping a previous one during rotation.</summary>
    public ValueTask<string> HashSecretAsync(string secret, CancellationToken cancellationToken) =>
        ObfuscateClientSecretAsync(secret, cancellationToken);

    private Task EvictAsync(TenantApplication application)
    {
        _found = null;
        var tenantId = string.IsNullOrEmpty(application.TenantId) ? tenant.TenantId : application.TenantId;
        return tenantId is null || string.IsNullOrEmpty(application.ClientId) ? Task.CompletedTask : clients.EvictAsync(tenantId, application.ClientId);
    }

    /// <summary>A cached client is shared by concurrent requests: nothing writes through it.</summary>
    private void RefuseShared(TenantApplication application)
    {
        if (application.IsSharedSnapshot)
        {
            throw new InvalidOperationException("A cached client is read-only: load the client to change with FindForChangeAsync.");
        }
    }
}
