using System.Security.Cryptography;
using IdentityService.Tenancy;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;

namespace IdentityService.Oidc;

/// <summary>
/// Builds and caches each tenant's <see cref="TenantOidcState"/>. Only tenants in use stay in memory
/// (a size-bounded cache), so 10,000 tenants do not mean 10,000 option objects. An entry is rebuilt
/// when the tenant changes or when its key set is due (a pending key activates, an old one retires).
/// </summary>
public sealed class TenantOidcStateCache : IDisposable
{
    private readonly IOptionsFactory<OpenIddictServerOptions> _factory;
    private readonly TenantKeyRing _keyRing;
    private readonly TimeProvider _time;
    private readonly MemoryCache _cache;
    private OpenIddictServerOptions? _template;
    // Builds of one tenant are serialized; tenants share a fixed set of gates, so memory does not grow with them.
    private readonly SemaphoreSlim[] _gates = Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1)).ToArray();

    public TenantOidcStateCache(IOptionsFactory<OpenIddictServerOptions> factory, TenantKeyRing keyRing, TimeProvider time, IOptions<KeyOptions> options)
    {
        _factory = factory;
        _keyRing = keyRing;
        _time = time;
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = options.Value.TenantCacheSize, Clock = null });
    }

    /// <summary>The options used where no tenant applies (the reserved <c>system</c> tenant's); set at start.</summary>
    public OpenIddictServerOptions? Fallback { get; private set; }

    internal void SetFallback(TenantOidcState state) => Fallback = state.Options;

    public async ValueTask<TenantOidcState> GetAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        if (TryGetFresh(tenant, out var state))
        {
            return state;
        }

        var gate = _gates[(int)((uint)StringComparer.Ordinal.GetHashCode(tenant.Id) % (uint)_gates.Length)];
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (TryGetFresh(tenant, out state))
            {
                return state;
            }

            var keys = await _keyRing.LoadAsync(tenant, cancellationToken);
            state = new TenantOidcState(tenant, Build(tenant, keys), keys);
            _cache.Set(tenant.Id, state, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = TimeSpan.FromMinutes(30) });
            return state;
        }
        finally
        {
            gate.Release();
        }
    }

    public void Evict(string tenantId) => _cache.Remove(tenantId);

    private bool TryGetFresh(Tenant tenant, out TenantOidcState state)
    {
        if (_cache.TryGetValue(tenant.Id, out TenantOidcState? cached) && cached is not null
            && cached.Tenant.Version == tenant.Version && cached.Keys.ValidUntil > _time.GetUtcNow())
        {
            if (!ReferenceEquals(cached.Tenant, tenant))
            {
                cached.Follow(tenant);
            }

            state = cached;
            return true;
        }

        state = null!;
        return false;
    }

    private OpenIddictServerOptions Build(Tenant tenant, TenantKeySet keys)
    {
        var template = _template ??= BuildTemplate();
        return TenantServerOptions.For(template, tenant, keys);
    }

    private OpenIddictServerOptions BuildTemplate()
    {
        // OpenIddict's own configuration is registered for the default name only: build that one once, with
        // placeholder keys (TenantServerOptionsConfigurer), and give each tenant a copy with its own keys.
        TenantServerOptionsConfigurer.BuildingTemplate = true;
        try
        {
            return _factory.Create(Options.DefaultName);
        }
        finally
        {
            TenantServerOptionsConfigurer.BuildingTemplate = false;
        }
    }

    public void Dispose() => _cache.Dispose();
}

/// <summary>
/// Gives OpenIddict's options template the keys it insists on while it is built and validated. They never
/// sign or decrypt anything: each tenant's copy replaces them with the tenant's own (<see cref="TenantServerOptions"/>).
/// </summary>
internal sealed class TenantServerOptionsConfigurer(TimeProvider time) : IConfigureOptions<OpenIddictServerOptions>
{
    [ThreadStatic]
    internal static bool BuildingTemplate;

    public void Configure(OpenIddictServerOptions options)
    {
        if (!BuildingTemplate)
        {
            throw new InvalidOperationException("OpenIddict's server options are built per tenant by TenantOidcStateCache only.");
        }

        options.TimeProvider = time;
        options.SigningCredentials.Add(new SigningCredentials(new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "template" }, TenantKeyRing.Es256));
        options.EncryptionCredentials.Add(new EncryptingCredentials(
            new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)) { KeyId = "template" }, TenantKeyRing.A256Kw, SecurityAlgorithms.Aes256CbcHmacSha512));
    }
}

/// <summary>OpenIddict reads its options through this monitor: the current request's tenant's, else the fallback.</summary>
internal sealed class TenantServerOptionsMonitor(IHttpContextAccessor accessor, TenantOidcStateCache cache) : IOptionsMonitor<OpenIddictServerOptions>
{
    public OpenIddictServerOptions CurrentValue =>
        accessor.HttpContext?.Features.Get<TenantOidcState>()?.Options
        ?? cache.Fallback
        ?? throw new InvalidOperationException("The OpenID Connect server is used before the service finished starting.");

    public OpenIddictServerOptions Get(string? name) => CurrentValue;

    public IDisposable? OnChange(Action<OpenIddictServerOptions, string?> listener) => null;
}
