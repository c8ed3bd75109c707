using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

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

    /// <summary>The documents kept (for tests).</summary>
    internal IReadOnlyList<Document> Kept => Volatile.Read(ref _documents);

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

    /// <summary>
    /// A kept document: its body is <see cref="Segments"/> with <see cref="Issuer"/> written between each two (a JWKS,
    /// which names no issuer, is one segment). The segments come from <see cref="DocumentTemplates"/>, so the tenants
    /// whose discovery documents differ only by their issuer share one copy of them.
    /// </summary>
    internal sealed record Document(string Path, string Scheme, string Host, string PathBase, byte[][] Segments, byte[] Issuer, string ContentType, string? CacheControl)
    {
        public int Length
        {
            get
            {
                var length = (Segments.Length - 1) * Issuer.Length;
                foreach (var segment in Segments)
                {
                    length += segment.Length;
                }

                return length;
            }
        }

        public bool Matches(string path, string scheme, string host, string pathBase) =>
            string.Equals(Path, path, StringComparison.Ordinal)
            && string.Equals(Host, host, StringComparison.Ordinal)
            && string.Equals(PathBase, pathBase, StringComparison.Ordinal)
            && string.Equals(Scheme, scheme, StringComparison.Ordinal);
    }
}

/// <summary>
/// The bodies of discovery documents cut at their issuer, shared by every tenant whose document is the same but for
/// it: with 10,000 tenants of the same settings, one copy of a 2 KB document instead of 10,000 (and a few bytes of
/// issuer each). Bounded (<see cref="SharedValues{TValue}"/>): past a thousand shapes, a document keeps its own segments.
/// </summary>
internal sealed class DocumentTemplates
{
    private readonly SharedValues<byte[][]> _segments = new();
    private readonly SharedValues<string> _headers = new();

    /// <summary>One instance of each header value (content type, cache control) for all documents.</summary>
    public string Share(string value) => _headers.Share(value, value);

    /// <summary>The body cut at each occurrence of its <c>issuer</c> value, and that value's bytes.</summary>
    public (byte[][] Segments, byte[] Issuer) Cut(byte[] body)
    {
        var issuer = IssuerOf(body);
        if (issuer is null)
        {
            return ([body], []);
        }

        var segments = new List<byte[]>();
        var rest = body.AsSpan();
        int at;
        while ((at = rest.IndexOf(issuer)) >= 0)
        {
            segments.Add(rest[..at].ToArray());
            rest = rest[(at + issuer.Length)..];
        }

        segments.Add(rest.ToArray());
        var cut = segments.ToArray();
        return (_segments.Share(KeyOf(cut), cut), issuer);
    }

    /// <summary>The UTF-8 bytes of the document's <c>issuer</c> as they appear in it; null for a body without one.</summary>
    private static byte[]? IssuerOf(byte[] body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("issuer", out var value)
                && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } issuer)
            {
                // Cut only where the body holds the value unescaped; joined again, the segments are the body byte for byte.
                var bytes = Encoding.UTF8.GetBytes(issuer);
                return body.AsSpan().IndexOf(bytes) >= 0 ? bytes : null;
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    private static string KeyOf(byte[][] segments)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> length = stackalloc byte[4];
        foreach (var segment in segments)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, segment.Length);
            hash.AppendData(length);
            hash.AppendData(segment);
        }

        return Convert.ToBase64String(hash.GetHashAndReset());
    }
}
