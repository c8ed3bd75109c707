using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// Writes the token endpoint's JSON responses as OpenIddict's own handler (<c>ProcessJsonResponse</c>) does, the same
/// bytes and headers (its encoder, its indentation option, Content-Length, content type), into a buffer kept per
/// thread instead of a new memory stream grown by doubling for every response: a token response holds two or three
/// tokens, and that growth was the largest allocation of a refresh.
/// </summary>
internal sealed class WriteTokenResponse(IOptionsMonitor<OpenIddictServerAspNetCoreOptions> options) : IOpenIddictServerHandler<ApplyTokenResponseContext>
{
    /// <summary>A thread's buffer grown past this by an unusually large response is let go.</summary>
    private const int KeptBufferBytes = 64 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    [ThreadStatic]
    private static bool t_indented;

    /// <summary>In place of OpenIddict's handler, at its order.</summary>
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyTokenResponseContext>()
            .AddFilter<OpenIddictServerAspNetCoreHandlerFilters.RequireHttpRequest>()
            .UseSingletonHandler<WriteTokenResponse>()
            .SetOrder(OpenIddictServerAspNetCoreHandlers.ProcessJsonResponse<ApplyTokenResponseContext>.Descriptor.Order)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ApplyTokenResponseContext context)
    {
        var response = context.Transaction.GetHttpRequest()?.HttpContext.Response
            ?? throw new InvalidOperationException("A token response outside any HTTP request.");
        var message = context.Transaction.Response ?? throw new InvalidOperationException("A token response without its message.");
        context.Logger.LogInformation("The response was successfully returned as a JSON document: {Response}.", message);

        // Written and copied to the response's pipe without an await in between: the thread's buffer is this request's alone.
        var indented = !options.CurrentValue.SuppressJsonResponseIndentation;
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var writer = t_writer;
        if (writer is null || t_indented != indented)
        {
            writer = t_writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = indented });
            t_indented = indented;
        }
        else
        {
            writer.Reset(buffer);
        }

        message.WriteTo(writer);
        writer.Flush();
        response.ContentLength = buffer.WrittenCount;
        response.ContentType = "application/json;charset=UTF-8";
        response.BodyWriter.Write(buffer.WrittenSpan);
        if (buffer.Capacity > KeptBufferBytes)
        {
            t_buffer = null;
            t_writer = null;
        }

        await response.BodyWriter.FlushAsync(context.CancellationToken);
        context.HandleRequest();
    }
}
