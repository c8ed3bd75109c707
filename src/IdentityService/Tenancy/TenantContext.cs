namespace IdentityService.Tenancy;

/// <summary>
/// The tenant the current request (or job) acts for. It is scoped: one scope serves one tenant,
/// and the data layer filters every query by it, so no feature has to remember to.
/// </summary>
public sealed class TenantContext
{
    public Tenant? Tenant { get; private set; }

    public string? TenantId => Tenant?.Id;

    /// <summary>The tenant, or an exception for code that runs only inside a tenant.</summary>
    public Tenant Required => Tenant ?? throw new InvalidOperationException("No tenant is set for this scope.");

    public void Set(Tenant tenant)
    {
        if (Tenant is not null && Tenant.Id != tenant.Id)
        {
            throw new InvalidOperationException("A scope serves one tenant; it cannot switch to another.");
        }

        Tenant = tenant;
    }
}
