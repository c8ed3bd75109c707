using IdentityService.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityService.Tests.Email;

/// <summary>Mail the service has taken on is not dropped when it stops as a deploy stops it (the host's shutdown).</summary>
public sealed class MailAtStopTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AFailedSend_IsLoggedWithoutTheCodeItsSubjectCarries()
    {
        var log = new RecordingOutput(output);
        using var factory = new IdentityServiceFactory { Output = log };
        factory.Settings["Email:Smtp:Host"] = "127.0.0.1";
        factory.Settings["Email:Smtp:Port"] = SmtpCapture.FreePort().ToString();
        factory.Settings["Email:Smtp:UseTls"] = "false";
        factory.Settings["Email:Smtp:From"] = "Sign-in <no-reply@id.example.test>";

        var mailer = factory.Services.GetRequiredService<IdentityService.Email.Mailer>();
        Assert.True(mailer.Enqueue(new IdentityService.Policy.TenantPolicy(), "ada@acme.test", "482913 is your ACME sign-in code", "482913"));

        await Eventually.TrueAsync(() => log.Lines.Any(l => l.Contains("Sending mail") && l.Contains("attempt 1")), "The first attempt failed.");
        Assert.Contains(log.Lines, l => l.Contains("###### is your ACME sign-in code"));
        Assert.DoesNotContain(log.Lines, l => l.Contains("482913"));
    }

    [Fact]
    public async Task AServerWithoutStartTls_IsAFailedAttempt_Logged_NotAMailLostInSilence()
    {
        // The platform's server asks for TLS; this one offers no STARTTLS (MailKit refuses it with NotSupportedException).
        var log = new RecordingOutput(output);
        await using var smtp = SmtpCapture.Start();
        using var factory = new IdentityServiceFactory { Output = log };
        factory.Settings["Email:Smtp:Host"] = "127.0.0.1";
        factory.Settings["Email:Smtp:Port"] = smtp.Port.ToString();
        factory.Settings["Email:Smtp:UseTls"] = "true";
        factory.Settings["Email:Smtp:From"] = "Sign-in <no-reply@id.example.test>";

        var mailer = factory.Services.GetRequiredService<IdentityService.Email.Mailer>();
        Assert.True(mailer.Enqueue(new IdentityService.Policy.TenantPolicy(), "ada@acme.test", "Your ACME account", "Hello"));

        await Eventually.TrueAsync(() => log.Lines.Any(l => l.Contains("Sending mail") && l.Contains("attempt 1")), "The failed attempt was not logged.");
        Assert.Empty(smtp.Messages);
    }

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
            var mail = await smtp.MailToAsync("ada@acme.test");
            Assert.Contains("/reset-password?token=", mail.TextBody);
        }
        finally
        {
            factory.Dispose();

            if (smtp is not null)
            {
                await smtp.DisposeAsync();
            }
        }
    }
}
