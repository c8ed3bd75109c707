using IdentityService.Data;
using Microsoft.AspNetCore.Identity;

namespace IdentityService.Users;

/// <summary>A person who signs in at one tenant. The same email may exist at several tenants as distinct users.</summary>
public sealed class AppUser : IdentityUser<Guid>, ITenantOwned
{
    public string TenantId { get; set; } = "";

    public string? GivenName { get; set; }

    public string? FamilyName { get; set; }

    public string? Name { get; set; }

    public string? Locale { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>The terms of service the person accepted when signing up (the URL the page linked), and when.</summary>
    public string? AcceptedTermsUrl { get; set; }

    public DateTimeOffset? TermsAcceptedAt { get; set; }

    /// <summary>
    /// Set by an admin: the account keeps its data but signs in nowhere. Disabling it ends its sessions, grants,
    /// reset links and second-step challenges at once; enabling it again restores none of them.
    /// </summary>
    public bool Disabled { get; set; }

    public DateTimeOffset? UpdatedAt { get; set; }
}

public sealed class AppRole : IdentityRole<Guid>, ITenantOwned
{
    public string TenantId { get; set; } = "";
}
