using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// A tenant's webhook endpoint on a real loopback port: records every POST it gets (headers and body) and answers
/// each with the next status queued in <see cref="Statuses"/>, or 204, after <see cref="Delay"/> (none by default).
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private WebhookReceiver(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public ConcurrentQueue<HttpStatusCode> Statuses { get; } = new();

    public ConcurrentQueue<Delivery> Deliveries { get; } = new();

    /// <summary>How long the endpoint takes to answer a POST it has recorded (real time).</summary>
    public TimeSpan Delay { get; set; }

    public sealed record Delivery(string Path, string? Id, string? Timestamp, string? Signature, string? ContentType, string Body);

    public static async Task<WebhookReceiver> StartAsync()
    {
        var app = LoopbackHttp.Create();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/{**path}", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var headers = http.Request.Headers;
            receiver.Deliveries.Enqueue(new Delivery(
                http.Request.Path, headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"], http.Request.ContentType, await reader.ReadToEndAsync()));
            await Task.Delay(receiver.Delay, CancellationToken.None);
            return Results.StatusCode((int)(receiver.Statuses.TryDequeue(out var status) ? status : HttpStatusCode.NoContent));
        });
        receiver.Url = await LoopbackHttp.StartAsync(app);
        return receiver;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
