using System.Security.Cryptography;
using System.Threading.Channels;
using IdentityService.Policy;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using MimeKit;

namespace IdentityService.Email;

/// <summary>
/// Sends the service's mail through an SMTP server (MailKit), in the background: a page that sends mail answers at
/// once, and in the same time whether or not it sent any (a reset asked for an unknown address must look like one
/// asked for a known one). A tenant's mail goes through its own server when its policy names one
/// (<c>email.smtp</c>), else through the service's (<c>Email:Smtp</c>). Outside Development a tenant's server is
/// reached only at a public address and only with TLS. A message that cannot be sent is tried again after 10 s and
/// 1 min, then dropped with an error logged. Messages wait in memory; when the service stops (a deploy's SIGTERM)
/// it sends what is queued and finishes what is under way, a message waiting to be tried again getting its last
/// attempt at once, within the host's shutdown timeout; a crash drops them.
/// </summary>
public sealed class Mailer(
    IOptions<SmtpOptions> options, IDataProtectionProvider dataProtection, IHostEnvironment environment, TimeProvider time, ILogger<Mailer> logger) : BackgroundService
{
    private static readonly TimeSpan[] Retries = [TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(1)];

    private readonly Channel<(MimeMessage Message, Server Server)> _queue =
        Channel.CreateBounded<(MimeMessage, Server)>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite });

    private readonly IDataProtector _passwords = dataProtection.CreateProtector("IdentityService.Email.TenantSmtpPassword.v1");

    private readonly Diagnostics.DrainedSends _sends = new(time);

    /// <summary>Whether a tenant with this policy can be sent mail: its own server, or the service's.</summary>
    public bool IsConfiguredFor(TenantPolicy policy) => policy.Email.Smtp is not null || options.Value.IsConfigured;

    /// <summary>A tenant's SMTP password as its policy stores it.</summary>
    public string ProtectPassword(string password) => _passwords.Protect(password);

    /// <summary>
    /// Queues a plain-text message to one address, through the tenant's server or the service's. Never waits; false
    /// when there is no server to send it through or the queue is full.
    /// </summary>
    public bool Enqueue(TenantPolicy policy, string to, string subject, string text)
    {
        var service = options.Value;
        Server? server = policy.Email.Smtp is { } own
            ? new Server(own.Host!, own.Port, own.UserName, own.Password, own.UseTls, From: own.From!, Tenant: true)
            : service.IsConfigured ? new Server(service.Host!, service.Port, service.UserName, service.Password, service.UseTls, service.From!, Tenant: false) : null;
        if (server is null)
        {
            return false;
        }

        var message = new MimeMessage();
        try
        {
            message.From.Add(MailboxAddress.Parse(server.From));
            message.To.Add(MailboxAddress.Parse(to));
        }
        catch (ParseException e)
        {
            logger.LogError("A message to an address MimeKit cannot read is not sent: {Error}", e.Message);
            return false;
        }

        message.Subject = subject;
        message.Body = new TextPart("plain") { Text = text };
        if (_queue.Writer.TryWrite((message, server)))
        {
            return true;
        }

        logger.LogError(_sends.Stopping ? "The service is stopping: a message is not sent." : "The mail queue is full: a message is not sent.");
        return false;
    }

    /// <summary>Reads the queue until it is closed (when the service stops) and empty, so what is queued then is still sent.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var (message, server) in _queue.Reader.ReadAllAsync(CancellationToken.None))
        {
            _sends.Track(SendAsync(message, server));
        }
    }

    /// <summary>Closes the queue and waits for every message queued or under way, until <paramref name="cancellationToken"/> (the host's shutdown timeout).</summary>
    public override Task StopAsync(CancellationToken cancellationToken) =>
        _sends.StopAsync(() => base.StopAsync(cancellationToken), cancellationToken, closeQueue: () => _queue.Writer.TryComplete());

    private async Task SendAsync(MimeMessage message, Server server)
    {
        var stoppingToken = _sends.Abandoned;
        for (var attempt = 0; attempt <= Retries.Length; attempt++)
        {
            try
            {
                if (attempt > 0 && !await _sends.WaitAsync(Retries[attempt - 1]))
                {
                    // The service is stopping: this is the message's last attempt.
                    attempt = Retries.Length;
                }

                using var client = new SmtpClient { Timeout = 30_000 };
                // A tenant's server is the tenant's to name: outside Development it gets TLS, and only a public address.
                var guarded = server.Tenant && !environment.IsDevelopment();
                var security = !server.UseTls && !guarded ? SecureSocketOptions.None : server.Port == 465 ? SecureSocketOptions.SslOnConnect : SecureSocketOptions.StartTls;
                if (guarded)
                {
                    var stream = await Protection.PublicAddresses.ConnectPublicAsync(server.Host, server.Port, stoppingToken);
                    try
                    {
                        await client.ConnectAsync(stream, server.Host, server.Port, security, stoppingToken);
                    }
                    catch
                    {
                        // Once connected the client owns the stream; a connection that failed leaves it to us.
                        await stream.DisposeAsync();
                        throw;
                    }
                }
                else
                {
                    await client.ConnectAsync(server.Host, server.Port, security, stoppingToken);
                }

                if (!string.IsNullOrEmpty(server.UserName))
                {
                    await client.AuthenticateAsync(server.UserName, PasswordOf(server), stoppingToken);
                }

                await client.SendAsync(message, stoppingToken);
                await client.DisconnectAsync(true, stoppingToken);
                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                logger.LogError("Mail (\"{Subject}\") not sent: the service stopped before it could be.", Loggable(message.Subject));
                return;
            }
            catch (Exception e)
            {
                // Whatever went wrong (a refused connection, a server without STARTTLS or AUTH, which MailKit says with
                // NotSupportedException): logged, and tried again; a mail is never lost in silence.
                logger.LogWarning("Sending mail (\"{Subject}\") failed, attempt {Attempt}: {Error}", Loggable(message.Subject), attempt + 1, e.Message);
            }
        }

        logger.LogError("Mail (\"{Subject}\") not sent after {Attempts} attempts.", Loggable(message.Subject), Retries.Length + 1);
    }

    /// <summary>A subject as the log shows it: its digits hidden, since a sign-in code's mail names the code there.</summary>
    internal static string Loggable(string? subject) =>
        string.Create((subject ?? "").Length, subject ?? "", static (span, text) =>
        {
            for (var i = 0; i < text.Length; i++)
            {
                span[i] = char.IsAsciiDigit(text[i]) ? '#' : text[i];
            }
        });

    private string PasswordOf(Server server) =>
        server.Password is null ? "" : server.Tenant ? _passwords.Unprotect(server.Password) : server.Password;

    /// <summary>Where a message goes: a tenant's password stays protected until the login that needs it.</summary>
    private sealed record Server(string Host, int Port, string? UserName, string? Password, bool UseTls, string From, bool Tenant);
}
