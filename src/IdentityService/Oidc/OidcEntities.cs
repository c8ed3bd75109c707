using IdentityService.Data;
using OpenIddict.EntityFrameworkCore.Models;

namespace IdentityService.Oidc;

// OpenIddict's entities, each carrying its tenant so that the global query filters partition them.

public sealed class TenantApplication : OpenIddictEntityFrameworkCoreApplication<Guid, TenantAuthorization, TenantToken>, ITenantOwned
{
    public string TenantId { get; set; } = "";

    /// <summary>First-party clients skip the consent page.</summary>
    public bool FirstParty { get; set; }

    /// <summary>Origins allowed to call the token and userinfo endpoints from a browser (CORS).</summary>
    public string? AllowedOrigins { get; set; }

    /// <summary>Audiences put in access tokens when the client asks for no resource (JSON array).</summary>
    public string? DefaultAudiences { get; set; }

    /// <summary>
    /// The tenant's API resources (JSON array) the client is the back end of (<see cref="ResourceServers"/>): it may
    /// introspect access tokens issued for them and, with the token-exchange grant, exchange them for tokens to call
    /// other APIs on behalf of the people whose tokens it receives (<see cref="TokenExchange"/>).
    /// </summary>
    public string? ServedResources { get; set; }

    /// <summary>A previous secret hash still accepted until <see cref="PreviousSecretExpiresAt"/> (rotation with overlap).</summary>
    public string? PreviousClientSecret { get; set; }

    public DateTimeOffset? PreviousSecretExpiresAt { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// Where the client publishes its public keys (a JSON Web Key Set) for its assertions (<c>private_key_jwt</c>),
    /// fetched and kept by <see cref="ClientKeySets"/>; instead of keys given inline (<c>JsonWebKeySet</c>).
    /// </summary>
    public string? JwksUri { get; set; }

    /// <summary>
    /// Where the service posts a logout token when a session the client signed in with ends (OpenID Connect
    /// Back-Channel Logout 1.0, <see cref="BackchannelLogout"/>); none when null.
    /// </summary>
    public string? BackchannelLogoutUri { get; set; }

    /// <summary>Whether the client needs the session's id (<c>sid</c>) in every logout token it gets.</summary>
    public bool BackchannelLogoutSessionRequired { get; set; }

    /// <summary>
    /// An instance held by <see cref="ClientCache"/> and shared by concurrent requests: read-only, never tracked
    /// by a database context (not a column).
    /// </summary>
    [System.ComponentModel.DataAnnotations.Schema.NotMapped]
    internal bool IsSharedSnapshot { get; set; }

    /// <summary>
    /// The permissions of a shared snapshot, parsed once (<see cref="TenantApplicationManager"/>): OpenIddict parses the
    /// JSON column on each of the three or four permission checks of a token request. Not a column.
    /// </summary>
    [System.ComponentModel.DataAnnotations.Schema.NotMapped]
    internal System.Collections.Immutable.ImmutableArray<string> ParsedPermissions { get; set; }

    /// <summary>The public keys of a shared snapshot, parsed once, for its assertions (<c>private_key_jwt</c>). Not a column.</summary>
    [System.ComponentModel.DataAnnotations.Schema.NotMapped]
    internal Microsoft.IdentityModel.Tokens.JsonWebKeySet? ParsedKeys { get; set; }
}

public sealed class TenantAuthorization : OpenIddictEntityFrameworkCoreAuthorization<Guid, TenantApplication, TenantToken>, ITenantOwned
{
    public string TenantId { get; set; } = "";

    /// <summary>The client's id: the foreign key OpenIddict maps as <c>ApplicationId</c>, here readable without loading the client.</summary>
    public Guid? ApplicationId { get; set; }

    /// <summary>
    /// Which of the sign-in's codes and refresh tokens is the live one (see <see cref="TokenFamilies"/>): 0 while
    /// the code is not exchanged yet, then one more at each exchange or refresh.
    /// </summary>
    public int TokenGeneration { get; set; }

    /// <summary>When <see cref="TokenGeneration"/> last moved on: the start of the tenant's refresh-token reuse leeway.</summary>
    public DateTimeOffset? RotatedAt { get; set; }

    /// <summary>
    /// The browser session the sign-in was made in (its <c>sid</c>, <see cref="SignIn.Session.SessionIdClaim"/>), set by
    /// <see cref="TenantAuthorizationManager"/>; null for consents and for sign-ins without a browser session (devices).
    /// </summary>
    public string? SessionId { get; set; }
}

public sealed class TenantScope : OpenIddictEntityFrameworkCoreScope<Guid>, ITenantOwned
{
    public string TenantId { get; set; } = "";
}

public sealed class TenantToken : OpenIddictEntityFrameworkCoreToken<Guid, TenantApplication, TenantAuthorization>, ITenantOwned
{
    public string TenantId { get; set; } = "";

    /// <summary>The client's id: the foreign key OpenIddict maps as <c>ApplicationId</c>, here readable without loading the client.</summary>
    public Guid? ApplicationId { get; set; }

    /// <summary>The authorization's id: the foreign key OpenIddict maps as <c>AuthorizationId</c>.</summary>
    public Guid? AuthorizationId { get; set; }
}

/// <summary>A tenant's signing or encryption key, its private material protected by Data Protection.</summary>
public sealed class TenantKey : ITenantOwned
{
    public Guid Id { get; set; }

    public string TenantId { get; set; } = "";

    /// <summary><c>RS256</c>, <c>ES256</c> (signing) or <c>A256KW</c> (encryption of codes and refresh tokens).</summary>
    public required string Algorithm { get; set; }

    public required string ProtectedMaterial { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the key starts signing. Until then it is only published, so that relying parties learn it first.</summary>
    public DateTimeOffset ActivatesAt { get; set; }
}
