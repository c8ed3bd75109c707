using Microsoft.Extensions.Logging;

namespace IdentityService.Tests.Infrastructure;

/// <summary>Sends the server's logs to the running test's output, so a failing test shows why.</summary>
public sealed class XunitLoggerProvider(Func<ITestOutputHelper?> output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(output, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(Func<ITestOutputHelper?> output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output()?.WriteLine($"[{logLevel}] {category}: {formatter(state, exception)}{(exception is null ? "" : Environment.NewLine + exception)}");
            }
            catch (InvalidOperationException)
            {
                // The test that owned the output has finished.
            }
        }
    }
}
