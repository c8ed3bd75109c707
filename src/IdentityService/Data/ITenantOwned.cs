namespace IdentityService.Data;

/// <summary>A row that belongs to one tenant. The data layer stamps and filters <see cref="TenantId"/>.</summary>
public interface ITenantOwned
{
    string TenantId { get; set; }
}
