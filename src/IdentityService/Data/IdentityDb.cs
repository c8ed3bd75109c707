using IdentityService.Audit;
using IdentityService.Oidc;
using IdentityService.Pipeline;
using IdentityService.Policy;
using IdentityService.Protection;
using IdentityService.Tenancy;
using IdentityService.Users;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace IdentityService.Data;

/// <summary>
/// The service's database. Every tenant-owned entity has a global query filter on the scope's
/// tenant, and new rows are stamped with it, so tenant scoping lives here and not in each query.
/// One subclass per database provider carries that provider's migrations.
/// </summary>
/// <remarks>
/// Contexts are pooled (<see cref="DatabaseSetup"/>): a context serves one scope at a time. It is bound to that
/// scope's <see cref="TenantContext"/> when leased (<see cref="BindTo"/>) and unbound when disposed, before EF Core
/// returns it to the pool, so one tenant's filter never reaches another tenant's request; unbound, it sees no
/// tenant's rows.
/// </remarks>
public abstract class IdentityDb : IdentityDbContext<AppUser, AppRole, Guid>, IDataProtectionKeyContext
{
    private TenantContext? _tenant;

    protected IdentityDb(DbContextOptions options)
        : base(options)
    {
        // Subscribed once per instance: EF Core keeps a pooled context's change tracker events across leases.
        ChangeTracker.Tracking += RefuseSharedClients;
    }

    /// <summary>The scope's tenant id; read by the query filters at query time, so the filters stay parameterized.</summary>
    internal string? CurrentTenantId => _tenant?.TenantId;

    /// <summary>Binds a context just taken from the pool to its scope's tenant (set now or later in the scope).</summary>
    internal void BindTo(TenantContext tenant)
    {
        if (_tenant is not null)
        {
            throw new InvalidOperationException("A database context is bound to a scope already: it was not unbound when returned to the pool.");
        }

        _tenant = tenant;
    }

    /// <summary>
    /// Runs a bulk write (<c>ExecuteUpdate</c>, <c>ExecuteDelete</c>) as <c>SaveChanges</c> runs its writes: on
    /// SQLite, in turn with this process's other writes (see <see cref="SqliteIdentityDb"/>).
    /// </summary>
    internal virtual Task<int> InTurnAsync(Func<CancellationToken, Task<int>> write, CancellationToken cancellationToken) => write(cancellationToken);

    public override void Dispose()
    {
        _tenant = null;
        base.Dispose();
    }

    public override ValueTask DisposeAsync()
    {
        _tenant = null;
        return base.DisposeAsync();
    }

    /// <summary>
    /// A client held by <see cref="ClientCache"/> is shared by concurrent requests: tracking it would let this
    /// context write through it, or fix its navigations up with this request's rows. It is refused outright.
    /// </summary>
    private static void RefuseSharedClients(object? sender, Microsoft.EntityFrameworkCore.ChangeTracking.EntityTrackingEventArgs e)
    {
        if (e.Entry.Entity is TenantApplication { IsSharedSnapshot: true })
        {
            throw new InvalidOperationException("A cached client is read-only and is never tracked by a database context.");
        }
    }

    public DbSet<Tenant> Tenants => Set<Tenant>();

    public DbSet<TenantKey> TenantKeys => Set<TenantKey>();

    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<TenantApplication> Applications => Set<TenantApplication>();

    public DbSet<TenantAuthorization> Authorizations => Set<TenantAuthorization>();

    public DbSet<TenantToken> Tokens => Set<TenantToken>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);

        builder.Entity<Tenant>(e =>
        {
            e.ToTable("Tenants");
            e.HasKey(t => t.Id);
            e.Property(t => t.Id).HasMaxLength(63);
            e.Property(t => t.DisplayName).HasMaxLength(200);
            e.Property(t => t.AccessTokenAlgorithm).HasMaxLength(10);
            e.PrimitiveCollection(t => t.ApiResources);
        });

        builder.Entity<TenantKey>(e =>
        {
            e.ToTable("TenantKeys");
            e.Property(k => k.Algorithm).HasMaxLength(10);
            e.HasIndex(k => new { k.TenantId, k.Algorithm, k.ActivatesAt });
        });

        builder.Entity<AuditEvent>(e =>
        {
            e.ToTable("AuditEvents");
            e.HasIndex(x => new { x.TenantId, x.Id });
            e.HasIndex(x => new { x.TenantId, x.Time });
            // A person's own activity page, and the API's userId filter, read one account's entries newest first.
            e.HasIndex(x => new { x.TenantId, x.UserId, x.Id });
            e.Property(x => x.Type).HasMaxLength(64);
            e.Property(x => x.Outcome).HasMaxLength(20);
            e.Property(x => x.Actor).HasMaxLength(200);
            e.Property(x => x.Reason).HasMaxLength(64);
            e.Property(x => x.DecidedBy).HasMaxLength(64);
            e.Property(x => x.Identifier).HasMaxLength(256);
            e.Property(x => x.Ip).HasMaxLength(64);
            e.Property(x => x.Country).HasMaxLength(2);
            e.Property(x => x.UserAgent).HasMaxLength(512);
            e.Property(x => x.ClientId).HasMaxLength(100);
        });

        builder.Entity<Webhooks.Webhook>(e =>
        {
            e.ToTable("Webhooks");
            e.Property(x => x.Url).HasMaxLength(2000);
            e.Property(x => x.CreatedBy).HasMaxLength(200);
            e.PrimitiveCollection(x => x.Events);
        });

        builder.Entity<Webhooks.WebhookDelivery>(e =>
        {
            e.ToTable("WebhookDeliveries");
            e.HasOne<Webhooks.Webhook>().WithMany().HasForeignKey(x => x.WebhookId).OnDelete(DeleteBehavior.Cascade);
            // One delivery per event and webhook; listed newest first by event.
            e.HasIndex(x => new { x.TenantId, x.WebhookId, x.EventId }).IsUnique();
            // Deliveries left pending by a replica that stopped, found across tenants.
            e.HasIndex(x => new { x.Status, x.NextAttemptAt });
            e.Property(x => x.EventType).HasMaxLength(64);
            e.Property(x => x.Status).HasMaxLength(16);
            e.Property(x => x.LastError).HasMaxLength(300);
        });

        builder.Entity<PasswordResetToken>(e =>
        {
            e.ToTable("PasswordResetTokens");
            e.HasIndex(x => x.TokenHash).IsUnique();
            e.HasIndex(x => x.UserId);
            e.Property(x => x.TokenHash).HasMaxLength(32);
        });

        builder.Entity<PendingSignUp>(e =>
        {
            e.ToTable("PendingSignUps");
            e.HasIndex(x => x.TokenHash).IsUnique();
            e.HasIndex(x => new { x.TenantId, x.NormalizedEmail });
            e.Property(x => x.TokenHash).HasMaxLength(32);
            e.Property(x => x.Email).HasMaxLength(256);
            e.Property(x => x.NormalizedEmail).HasMaxLength(256);
            e.Property(x => x.PasswordHash).HasMaxLength(1000);
            e.Property(x => x.Name).HasMaxLength(200);
            e.Property(x => x.ReturnUrl).HasMaxLength(2000);
        });

        builder.Entity<Mfa.MfaChallenge>(e =>
        {
            e.ToTable("MfaChallenges");
            e.HasIndex(x => x.TokenHash).IsUnique();
            e.HasIndex(x => x.UserId);
            e.Property(x => x.TokenHash).HasMaxLength(32);
            e.Property(x => x.CodeHash).HasMaxLength(32);
            e.Property(x => x.Reason).HasMaxLength(64);
            e.Property(x => x.ClientId).HasMaxLength(100);
            e.Property(x => x.Country).HasMaxLength(2);
            e.Property(x => x.CodeFactor).HasMaxLength(16);
            e.Property(x => x.PendingTotpSecret).HasMaxLength(1000);
        });

        builder.Entity<Mfa.UserAuthenticator>(e =>
        {
            e.ToTable("UserAuthenticators");
            e.HasIndex(x => x.UserId).IsUnique();
            e.Property(x => x.ProtectedSecret).HasMaxLength(1000);
        });

        // Identity's passkeys table as its schema version 3 has it; the rest of Identity's tables stay as they are.
        builder.Entity<Microsoft.AspNetCore.Identity.IdentityUserPasskey<Guid>>(e =>
        {
            e.ToTable("AspNetUserPasskeys");
            e.HasKey(p => p.CredentialId);
            e.Property(p => p.CredentialId).HasMaxLength(1024);
            e.OwnsOne(p => p.Data).ToJson();
            e.HasOne<AppUser>().WithMany().HasForeignKey(p => p.UserId).IsRequired();
            e.HasIndex(p => p.UserId);
        });

        builder.Entity<Mfa.TrustedBrowser>(e =>
        {
            e.ToTable("TrustedBrowsers");
            e.HasIndex(x => x.TokenHash).IsUnique();
            e.HasIndex(x => x.UserId);
            e.Property(x => x.TokenHash).HasMaxLength(32);
            e.Property(x => x.Stamp).HasMaxLength(256);
        });

        builder.Entity<Mfa.RecoveryCode>(e =>
        {
            e.ToTable("RecoveryCodes");
            e.HasIndex(x => new { x.UserId, x.CodeHash });
            e.Property(x => x.CodeHash).HasMaxLength(32);
        });

        builder.Entity<AccountLockout>(e =>
        {
            e.ToTable("AccountLockouts");
            e.HasKey(x => new { x.TenantId, x.Key });
            e.Property(x => x.Key).HasMaxLength(100);
        });

        builder.Entity<UserSighting>(e =>
        {
            e.ToTable("UserSightings");
            e.HasIndex(x => new { x.UserId, x.Kind, x.Value }).IsUnique();
            e.Property(x => x.Kind).HasMaxLength(16);
            e.Property(x => x.Value).HasMaxLength(128);
        });

        builder.Entity<RevokedToken>(e =>
        {
            e.ToTable("RevokedTokens");
            e.HasKey(x => new { x.TenantId, x.TokenId });
            e.Property(x => x.TokenId).HasMaxLength(100);
        });

        builder.Entity<TenantPolicyRecord>(e =>
        {
            e.ToTable("TenantPolicies");
            e.HasKey(x => x.TenantId);
        });

        builder.Entity<AppUser>(e =>
        {
            // Identity's built-in indexes are global; a person's email is unique within a tenant only.
            e.Metadata.RemoveIndex(e.Metadata.GetIndexes().Single(i => i.GetDatabaseName() == "UserNameIndex"));
            e.Metadata.RemoveIndex(e.Metadata.GetIndexes().Single(i => i.GetDatabaseName() == "EmailIndex"));
            e.HasIndex(u => new { u.TenantId, u.NormalizedUserName }).IsUnique().HasDatabaseName("UserNameIndex");
            e.HasIndex(u => new { u.TenantId, u.NormalizedEmail }).IsUnique().HasDatabaseName("EmailIndex");
            e.Property(u => u.GivenName).HasMaxLength(100);
            e.Property(u => u.FamilyName).HasMaxLength(100);
            e.Property(u => u.Name).HasMaxLength(200);
            e.Property(u => u.Locale).HasMaxLength(35);
        });

        builder.Entity<AppRole>(e =>
        {
            e.Metadata.RemoveIndex(e.Metadata.GetIndexes().Single(i => i.GetDatabaseName() == "RoleNameIndex"));
            e.HasIndex(r => new { r.TenantId, r.NormalizedName }).IsUnique().HasDatabaseName("RoleNameIndex");
        });

        builder.Entity<TenantApplication>(e =>
        {
            e.Metadata.RemoveIndex(e.Metadata.GetIndexes().Single(i => i.Properties.Count == 1 && i.Properties[0].Name == nameof(TenantApplication.ClientId)));
            e.HasIndex(a => new { a.TenantId, a.ClientId }).IsUnique();
        });

        builder.Entity<TenantAuthorization>(e =>
        {
            e.Property(a => a.SessionId).HasMaxLength(64);
            e.HasIndex(a => new { a.TenantId, a.SessionId });
        });

        builder.Entity<TenantApplication>().Property(a => a.BackchannelLogoutUri).HasMaxLength(2000);
        builder.Entity<TenantApplication>().Property(a => a.JwksUri).HasMaxLength(2000);

        builder.Entity<TenantScope>(e =>
        {
            e.Metadata.RemoveIndex(e.Metadata.GetIndexes().Single(i => i.Properties.Count == 1 && i.Properties[0].Name == nameof(TenantScope.Name)));
            e.HasIndex(s => new { s.TenantId, s.Name }).IsUnique();
        });

        foreach (var entity in builder.Model.GetEntityTypes().Where(t => typeof(ITenantOwned).IsAssignableFrom(t.ClrType)).ToList())
        {
            builder.Entity(entity.ClrType).Property(nameof(ITenantOwned.TenantId)).HasMaxLength(63).IsRequired();
            builder.Entity(entity.ClrType).HasIndex(nameof(ITenantOwned.TenantId));
        }

        // The filters: one per tenant-owned entity, on the scope's tenant. A scope with no tenant sees nothing.
        builder.Entity<AppUser>().HasQueryFilter(u => u.TenantId == CurrentTenantId);
        builder.Entity<AppRole>().HasQueryFilter(r => r.TenantId == CurrentTenantId);
        builder.Entity<TenantApplication>().HasQueryFilter(a => a.TenantId == CurrentTenantId);
        builder.Entity<TenantAuthorization>().HasQueryFilter(a => a.TenantId == CurrentTenantId);
        builder.Entity<TenantScope>().HasQueryFilter(s => s.TenantId == CurrentTenantId);
        builder.Entity<TenantToken>().HasQueryFilter(t => t.TenantId == CurrentTenantId);
        builder.Entity<TenantKey>().HasQueryFilter(k => k.TenantId == CurrentTenantId);
        builder.Entity<AuditEvent>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<Webhooks.Webhook>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<Webhooks.WebhookDelivery>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<PasswordResetToken>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<PendingSignUp>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<Mfa.MfaChallenge>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<Mfa.UserAuthenticator>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<Mfa.RecoveryCode>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<Mfa.TrustedBrowser>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<AccountLockout>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<UserSighting>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<TenantPolicyRecord>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
        builder.Entity<RevokedToken>().HasQueryFilter(x => x.TenantId == CurrentTenantId);
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        StampTenant();
        return base.SaveChanges(acceptAllChangesOnSuccess);
    }

    public override Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        StampTenant();
        return base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
    }

    private void StampTenant()
    {
        foreach (var entry in ChangeTracker.Entries<ITenantOwned>())
        {
            if (entry.State == EntityState.Added && string.IsNullOrEmpty(entry.Entity.TenantId))
            {
                entry.Entity.TenantId = CurrentTenantId
                    ?? throw new InvalidOperationException($"A {entry.Entity.GetType().Name} was added outside any tenant.");
            }
            else if (entry.State is EntityState.Added or EntityState.Modified && entry.Entity.TenantId != CurrentTenantId)
            {
                // Defence in depth: a row of another tenant is never written from this scope.
                throw new InvalidOperationException($"A {entry.Entity.GetType().Name} of another tenant was written from this scope.");
            }
        }
    }
}
