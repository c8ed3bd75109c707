using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using MimeKit;
using SmtpServer;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace IdentityService.Tests.Infrastructure;

/// <summary>
/// A real SMTP server on a loopback port (the SmtpServer library) that keeps every message it accepts, parsed with
/// MimeKit, for a test to read as a person would read their mail.
/// </summary>
public sealed class SmtpCapture : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    private SmtpCapture(int port, Store store, SmtpServer.SmtpServer server)
    {
        Port = port;
        Messages = store.Messages;
        _running = server.StartAsync(_stop.Token);
    }

    public int Port { get; }

    public ConcurrentQueue<MimeMessage> Messages { get; }

    /// <summary>The first message to an address, once one has arrived.</summary>
    public async Task<MimeMessage> MailToAsync(string address)
    {
        await Eventually.TrueAsync(() => Messages.Any(m => m.To.Mailboxes.Any(b => b.Address == address)), $"No mail reached {address}.");
        return Messages.First(m => m.To.Mailboxes.Any(b => b.Address == address));
    }

    /// <summary>The first link in a message's text to one of the service's pages (its path, such as <c>/reset-password</c>), with its token.</summary>
    public static string LinkIn(MimeMessage mail, string page) =>
        System.Text.RegularExpressions.Regex.Match(mail.TextBody ?? "", $"http://\\S+{System.Text.RegularExpressions.Regex.Escape(page)}\\?token=[A-Za-z0-9_-]+").Value;

    /// <summary>The settings that point the service at this server (plain SMTP on loopback).</summary>
    public Dictionary<string, string?> Settings => new()
    {
        ["Email:Smtp:Host"] = "127.0.0.1",
        ["Email:Smtp:Port"] = Port.ToString(),
        ["Email:Smtp:UseTls"] = "false",
        ["Email:Smtp:From"] = "Sign-in <no-reply@id.example.test>",
    };

    /// <param name="userName">With a user name and password, the server asks every client to log in with them (AUTH, on plain SMTP).</param>
    /// <param name="port">The port to listen on (a test that starts the server after the service tried to reach it); by default a free one.</param>
    public static SmtpCapture Start(string? userName = null, string? password = null, int? port = null)
    {
        port ??= FreePort();
        var options = new SmtpServerOptionsBuilder()
            .ServerName("localhost")
            .Endpoint(endpoint => endpoint.Endpoint(new IPEndPoint(IPAddress.Loopback, port.Value))
                .AllowUnsecureAuthentication(userName is not null).AuthenticationRequired(userName is not null))
            .Build();
        var store = new Store();
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(store);
        if (userName is not null)
        {
            services.Add(new Login(userName, password ?? ""));
        }

        return new SmtpCapture(port.Value, store, new SmtpServer.SmtpServer(options, services));
    }

    /// <summary>A loopback port nothing listens on (as the system gave it out a moment ago).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _running;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private sealed class Login(string userName, string password) : SmtpServer.Authentication.IUserAuthenticator
    {
        public Task<bool> AuthenticateAsync(ISessionContext context, string user, string pass, CancellationToken cancellationToken) =>
            Task.FromResult(user == userName && pass == password);
    }

    private sealed class Store : MessageStore
    {
        public ConcurrentQueue<MimeMessage> Messages { get; } = new();

        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            using var stream = new MemoryStream(buffer.ToArray());
            Messages.Enqueue(await MimeMessage.LoadAsync(stream, cancellationToken));
            return SmtpResponse.Ok;
        }
    }
}

public static class SmtpCaptureSettings
{
    /// <summary>Points the service at this server for its mail (before it starts).</summary>
    public static void SendMailTo(this IdentityServiceFactory factory, SmtpCapture smtp)
    {
        foreach (var (key, value) in smtp.Settings)
        {
            factory.Settings[key] = value;
        }
    }
}
