using System.Collections.Concurrent;
using IdentityService.Tests.Infrastructure;

namespace IdentityService.Tests.Email;

/// <summary>Mail the service has taken on is not dropped when it stops as a deploy stops it (the host's shutdown).</summary>
public sealed class MailAtStopTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AResetMailWaitingToBeTriedAgain_IsSentWhenTheServiceStops()
    {
        var log = new RecordingOutput(output);
        var port = SmtpCapture.FreePort();
        var factory = new IdentityServiceFactory { Output = log };
        factory.Settings["Email:Smtp:Host"] = "127.0.0.1";
        factory.Settings["Email:Smtp:Port"] = port.ToString();
        factory.Settings["Email:Smtp:UseTls"] = "false";
        factory.Settings["Email:Smtp:From"] = "Sign-in <no-reply@id.example.test>";
        SmtpCapture? smtp = null;
        var stopped = false;
        try
        {
            await factory.CreateTenantAsync("acme");
            await factory.CreateUserAsync("acme", "ada@acme.test", "correct horse battery staple");
            using var browser = factory.CreateBrowser();
            await PageForms.PostAsync(browser, "/t/acme/forgot-password", new() { ["Email"] = "ada@acme.test" });

            // No mail server yet: the first attempt fails, and the next waits 10 s (on the test's clock, which stands still).
            await Eventually.TrueAsync(() => log.Lines.Any(l => l.Contains("Sending mail") && l.Contains("attempt 1")), "The first attempt failed.");
            smtp = SmtpCapture.Start(port: port);

            factory.Dispose();
            stopped = true;
            var mail = await smtp.MailToAsync("ada@acme.test");
            Assert.Contains("/reset-password?token=", mail.TextBody);
        }
        finally
        {
            if (!stopped)
            {
                factory.Dispose();
            }

            if (smtp is not null)
            {
                await smtp.DisposeAsync();
            }
        }
    }

    /// <summary>The test's output, with every line kept for the test to read.</summary>
    private sealed class RecordingOutput(ITestOutputHelper inner) : ITestOutputHelper
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public void WriteLine(string message)
        {
            Lines.Enqueue(message);
            inner.WriteLine(message);
        }

        public void WriteLine(string format, params object[] args) => WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
    }
}
