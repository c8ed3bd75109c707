using System.Threading.Channels;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;

namespace IdentityService.Email;

/// <summary>
/// Sends the service's mail through the configured SMTP server (MailKit), in the background: a page that sends
/// mail answers at once, and in the same time whether or not it sent any (a reset asked for an unknown address
/// must look like one asked for a known one). A message that cannot be sent is tried again after 10 s and 1 min,
/// then dropped with an error logged. Messages wait in memory: a restart drops those not yet sent.
/// </summary>
public sealed class Mailer(IOptions<SmtpOptions> options, TimeProvider time, ILogger<Mailer> logger) : BackgroundService
{
    private static readonly TimeSpan[] Retries = [TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(1)];

    private readonly Channel<MimeMessage> _queue = Channel.CreateBounded<MimeMessage>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite });

    public bool IsConfigured => options.Value.IsConfigured;

    /// <summary>Queues a plain-text message to one address. Never waits; false when no SMTP server is configured or the queue is full.</summary>
    public bool Enqueue(string to, string subject, string text)
    {
        var smtp = options.Value;
        if (!smtp.IsConfigured)
        {
            return false;
        }

        var message = new MimeMessage();
        try
        {
            message.From.Add(MailboxAddress.Parse(smtp.From!));
            message.To.Add(MailboxAddress.Parse(to));
        }
        catch (ParseException e)
        {
            logger.LogError("A message to an address MimeKit cannot read is not sent: {Error}", e.Message);
            return false;
        }

        message.Subject = subject;
        message.Body = new TextPart("plain") { Text = text };
        if (_queue.Writer.TryWrite(message))
        {
            return true;
        }

        logger.LogError("The mail queue is full: a message is not sent.");
        return false;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var message in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                _ = SendAsync(message, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task SendAsync(MimeMessage message, CancellationToken stoppingToken)
    {
        for (var attempt = 0; attempt <= Retries.Length; attempt++)
        {
            try
            {
                if (attempt > 0)
                {
                    await Task.Delay(Retries[attempt - 1], time, stoppingToken);
                }

                var smtp = options.Value;
                using var client = new SmtpClient { Timeout = 30_000 };
                var security = !smtp.UseTls ? SecureSocketOptions.None : smtp.Port == 465 ? SecureSocketOptions.SslOnConnect : SecureSocketOptions.StartTls;
                await client.ConnectAsync(smtp.Host!, smtp.Port, security, stoppingToken);
                if (!string.IsNullOrEmpty(smtp.UserName))
                {
                    await client.AuthenticateAsync(smtp.UserName, smtp.Password ?? "", stoppingToken);
                }

                await client.SendAsync(message, stoppingToken);
                await client.DisconnectAsync(true, stoppingToken);
                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or MailKit.ProtocolException or MailKit.CommandException or SslHandshakeException or AuthenticationException or OperationCanceledException)
            {
                logger.LogWarning("Sending mail (\"{Subject}\") failed, attempt {Attempt}: {Error}", message.Subject, attempt + 1, e.Message);
            }
        }

        logger.LogError("Mail (\"{Subject}\") not sent after {Attempts} attempts.", message.Subject, Retries.Length + 1);
    }
}
