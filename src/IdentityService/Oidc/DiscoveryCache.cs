using System.Buffers;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace IdentityService.Oidc;

/// <summary>
/// Serves a tenant's discovery document and JWKS from memory. The first plain GET of a document for an
/// origin goes through the whole pipeline, where OpenIddict renders it; its 200 response (body, content
/// type, cache control) is kept on the tenant's <see cref="TenantOidcState"/> and later plain GETs get
/// those bytes without routing, authentication or OpenIddict. Anything else (HEAD, a query string, a
/// conditional or range request, another path or method) goes through the pipeline as before. Runs after
/// tenant resolution and the request rate limits, before CORS, whose headers it applies the way the CORS
/// middleware does, with the same policy.
/// </summary>
internal sealed class DiscoveryCache(RequestDelegate next, IOptions<IssuerOptions> issuer, ICorsService cors)
{
    private readonly DocumentTemplates _templates = new();

    private const string Configuration = "/.well-known/openid-configuration";
    private const string Jwks = "/.well-known/jwks";

    /// <summary>Larger bodies are served but not kept (a JWKS of a few keys is a few KB).</summary>
    private const int MaxBody = 256 * 1024;

    public Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var state = context.Features.Get<TenantOidcState>();
        if (state is null || !HttpMethods.IsGet(request.Method) || request.QueryString.HasValue
            || request.Path.Value is not (Configuration or Jwks) || IsConditional(request.Headers))
        {
            return next(context);
        }

        var path = request.Path.Value;
        // With a configured public origin the documents never name the request's host: one entry serves every host.
        var host = issuer.Value.PublicOrigin is null ? request.Host.Value ?? "" : "";
        var pathBase = request.PathBase.Value ?? "";
        if (state.Documents.Find(path, request.Scheme, host, pathBase) is { } document)
        {
            return ServeAsync(context, document);
        }

        // A kept document holds the literals its path and scheme equal, not the request's strings: one copy for every tenant.
        var scheme = request.Scheme switch { "https" => "https", "http" => "http", var other => other };
        return RenderAndKeepAsync(context, state.Documents,
            new DiscoveryDocuments.Document(path == Configuration ? Configuration : Jwks, scheme, host, pathBase, [], [], "", null));
    }

    private async Task ServeAsync(HttpContext context, DiscoveryDocuments.Document document)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = document.ContentType;
        response.ContentLength = document.Length;
        if (document.CacheControl is not null)
        {
            response.Headers.CacheControl = document.CacheControl;
        }

        if (context.Request.Headers.ContainsKey(HeaderNames.Origin))
        {
            // As the CORS middleware does for a GET outside any endpoint: the default policy, that is the tenant's allowed origins.
            var policy = await context.RequestServices.GetRequiredService<ICorsPolicyProvider>().GetPolicyAsync(context, policyName: null);
            if (policy is not null)
            {
                cors.ApplyResult(cors.EvaluatePolicy(context, policy), response);
            }
        }

        var writer = response.BodyWriter;
        for (var i = 0; i < document.Segments.Length; i++)
        {
            if (i > 0)
            {
                writer.Write(document.Issuer);
            }

            writer.Write(document.Segments[i]);
        }

        await writer.FlushAsync(context.RequestAborted);
    }

    private async Task RenderAndKeepAsync(HttpContext context, DiscoveryDocuments documents, DiscoveryDocuments.Document key)
    {
        var response = context.Response;
        var original = response.Body;
        await using var copy = new CopyingStream(original, MaxBody);
        response.Body = copy;
        try
        {
            await next(context);
        }
        finally
        {
            response.Body = original;
        }

        if (response.StatusCode == StatusCodes.Status200OK && copy.Copy is { } body && response.ContentLength == body.Length
            && response.ContentType is { } contentType && !response.Headers.ContainsKey(HeaderNames.SetCookie))
        {
            string? cacheControl = response.Headers.CacheControl;
            var (segments, issuerBytes) = _templates.Cut(body);
            documents.Add(key with { Segments = segments, Issuer = issuerBytes, ContentType = _templates.Share(contentType), CacheControl = cacheControl is null ? null : _templates.Share(cacheControl) });
        }
    }

    private static bool IsConditional(IHeaderDictionary headers) =>
        headers.ContainsKey(HeaderNames.IfNoneMatch) || headers.ContainsKey(HeaderNames.IfModifiedSince)
        || headers.ContainsKey(HeaderNames.IfMatch) || headers.ContainsKey(HeaderNames.IfUnmodifiedSince)
        || headers.ContainsKey(HeaderNames.IfRange) || headers.ContainsKey(HeaderNames.Range);

    /// <summary>Passes every write on to the response and keeps a copy of the bytes, up to a limit.</summary>
    private sealed class CopyingStream(Stream inner, int limit) : Stream
    {
        private MemoryStream? _copy = new();

        /// <summary>The bytes written, or null when they exceeded the limit.</summary>
        public byte[]? Copy => _copy?.ToArray();

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Keep(buffer.AsSpan(offset, count));
            inner.Write(buffer, offset, count);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Keep(buffer.Span);
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private void Keep(ReadOnlySpan<byte> bytes)
        {
            if (_copy is null)
            {
                return;
            }

            if (_copy.Length + bytes.Length > limit)
            {
                _copy = null;
                return;
            }

            _copy.Write(bytes);
        }
    }
}
