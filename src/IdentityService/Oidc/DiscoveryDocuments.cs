namespace IdentityService.Oidc;

/// <summary>
/// One tenant's discovery document and JWKS exactly as OpenIddict rendered them (body, content type,
/// cache control), kept on the tenant's <see cref="TenantOidcState"/>: a rebuilt state (a key published
/// or retired, the tenant changed or evicted) starts with none. The discovery document names the issuer,
/// which depends on the request's origin when <c>Issuer:PublicOrigin</c> is unset, so each entry is kept
/// for one scheme, host and path base; a few entries at most, the oldest replaced first.
/// </summary>
public sealed class DiscoveryDocuments
{
    /// <summary>Two documents for up to four origins.</summary>
    internal const int Capacity = 8;

    private readonly Lock _gate = new();
    private Document[] _documents = [];

    internal Document? Find(string path, string scheme, string host, string pathBase)
    {
        foreach (var document in Volatile.Read(ref _documents))
        {
            if (document.Matches(path, scheme, host, pathBase))
            {
                return document;
            }
        }

        return null;
    }

    internal void Add(Document document)
    {
        lock (_gate)
        {
            var current = _documents;
            if (Array.Exists(current, d => d.Matches(document.Path, document.Scheme, document.Host, document.PathBase)))
            {
                return;
            }

            var kept = current.Length < Capacity ? current : current[1..];
            Volatile.Write(ref _documents, [.. kept, document]);
        }
    }

    internal sealed record Document(string Path, string Scheme, string Host, string PathBase, byte[] Body, string ContentType, string? CacheControl)
    {
        public bool Matches(string path, string scheme, string host, string pathBase) =>
            string.Equals(Path, path, StringComparison.Ordinal)
            && string.Equals(Host, host, StringComparison.Ordinal)
            && string.Equals(PathBase, pathBase, StringComparison.Ordinal)
            && string.Equals(Scheme, scheme, StringComparison.Ordinal);
    }
}
