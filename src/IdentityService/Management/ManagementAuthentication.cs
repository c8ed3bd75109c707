using System.Security.Claims;
using System.Text.Encodings.Web;
using IdentityService.Oidc;
using IdentityService.Tenancy;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;

namespace IdentityService.Management;

/// <summary>
/// Authenticates management API callers with access tokens this service issued. The token's issuer names
/// its tenant; the signature is checked with that tenant's keys, the audience must be the management API,
/// and the token must still be valid in the token store (a revoked token is refused at once); a person's token, only
/// while they are an enabled administrator with the sign-in it was issued under still valid.
/// </summary>
internal sealed class ManagementAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    TenantDirectory directory,
    TenantOidcStateCache states,
    IOptions<IssuerOptions> issuer,
    IServiceScopeFactory scopes,
    TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ManagementBearer";
    public const string TenantClaim = "tenant";

    private static readonly JsonWebTokenHandler Tokens = new() { MapInboundClaims = false };

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }

        var raw = header["Bearer ".Length..].Trim();
        if (raw.Length is 0 or > 16_384 || !Tokens.CanReadToken(raw))
        {
            return AuthenticateResult.Fail("The token is malformed.");
        }

        var tokenIssuer = UnvalidatedIssuer(raw);
        if (tokenIssuer is null)
        {
            return AuthenticateResult.Fail("The token is malformed.");
        }

        var prefix = issuer.Value.OriginFor(Request) + "/t/";
        if (!tokenIssuer.StartsWith(prefix, StringComparison.Ordinal))
        {
            return AuthenticateResult.Fail("The token was not issued here.");
        }

        var tenant = await directory.FindAsync(tokenIssuer[prefix.Length..], Context.RequestAborted);
        if (tenant is null || tenant.Suspended)
        {
            return AuthenticateResult.Fail("The token's tenant does not exist.");
        }

        var state = await states.GetAsync(tenant, Context.RequestAborted);
        var result = await Tokens.ValidateTokenAsync(raw, new TokenValidationParameters
        {
            ValidIssuer = issuer.Value.IssuerFor(Request, tenant.Id),
            ValidAudience = Clients.ManagementAudience,
            IssuerSigningKeys = state.Keys.Signing.Select(c => c.Key),
            ValidTypes = ["at+jwt"],
            ClockSkew = TimeSpan.Zero,
            LifetimeValidator = (notBefore, expires, _, _) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return (notBefore is null || notBefore <= now) && expires > now;
            },
        });
        if (!result.IsValid)
        {
            return AuthenticateResult.Fail("The token is invalid or expired.");
        }

        var identity = result.ClaimsIdentity;
        var scopesClaim = identity.FindFirst("scope")?.Value?.Split(' ') ?? [];
        if (!scopesClaim.Contains(Clients.ManageScope))
        {
            return AuthenticateResult.Fail("The token lacks the manage scope.");
        }

        using var scope = scopes.CreateTenantScope(tenant);
        if (!await IsStillValidAsync(scope.ServiceProvider, identity.FindFirst("oi_tkn_id")?.Value, identity.FindFirst("jti")?.Value, identity.FindFirst("client_id")?.Value, identity.FindFirst("iat")?.Value))
        {
            return AuthenticateResult.Fail("The token was revoked.");
        }

        // A user's token manages only while the user is an administrator of the tenant; a client's always.
        var subject = identity.FindFirst("sub")?.Value;
        var isClient = subject is not null && subject == identity.FindFirst("client_id")?.Value;
        if (!isClient && (!identity.FindAll("role").Any(r => r.Value == Users.Roles.Admin)
            || !await MayStillManageAsync(scope.ServiceProvider, subject, identity.FindFirst("oi_au_id")?.Value)))
        {
            return AuthenticateResult.Fail("The user is not an administrator.");
        }

        identity.AddClaim(new Claim(TenantClaim, tenant.Id));
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    /// <summary>
    /// The issuer a token names, read before anything is validated to find whose keys check it; null when the token
    /// only looks like a JWT (five or more parts, a header or payload that is not JSON, an issuer that is not a string).
    /// </summary>
    private static string? UnvalidatedIssuer(string raw)
    {
        try
        {
            return Tokens.ReadJsonWebToken(raw).Issuer;
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>A token with a row must still be valid there; a row-less one (client credentials) must not be on the revoked list.</summary>
    private async Task<bool> IsStillValidAsync(IServiceProvider services, string? tokenId, string? jwtId, string? clientId, string? issuedAt)
    {
        if (tokenId is null)
        {
            return jwtId is not null
                && !await services.GetRequiredService<RevokedTokens>().IsRevokedAsync(jwtId, Context.RequestAborted)
                && await RowlessAccessTokens.IssuedToLiveClientAsync(services, clientId, issuedAt, Context.RequestAborted);
        }

        var tokens = services.GetRequiredService<IOpenIddictTokenManager>();
        var token = await tokens.FindByIdAsync(tokenId, Context.RequestAborted);
        return token is not null && await tokens.HasStatusAsync(token, OpenIddictConstants.Statuses.Valid, Context.RequestAborted);
    }

    /// <summary>
    /// Whether the person a token was issued to may manage now, not only when it was issued: the sign-in it names is
    /// still valid (signing out everywhere, being disabled or deleted revoke it), and the account exists, is enabled
    /// and is an administrator (a role taken away ends its tokens' management at once).
    /// </summary>
    private async Task<bool> MayStillManageAsync(IServiceProvider services, string? subject, string? authorizationId)
    {
        var authorizations = services.GetRequiredService<IOpenIddictAuthorizationManager>();
        if (string.IsNullOrEmpty(authorizationId) || await authorizations.FindByIdAsync(authorizationId, Context.RequestAborted) is not { } authorization
            || !await authorizations.HasStatusAsync(authorization, OpenIddictConstants.Statuses.Valid, Context.RequestAborted))
        {
            return false;
        }

        var users = services.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Users.AppUser>>();
        return subject is not null && await users.FindByIdAsync(subject) is { Disabled: false } user && await users.IsInRoleAsync(user, Users.Roles.Admin);
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }
}
