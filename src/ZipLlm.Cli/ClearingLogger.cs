using Microsoft.Extensions.Logging;

namespace ZipLlm.Cli;

/// <summary>A logger that clears the progress line before each message, so the two never interleave.</summary>
internal sealed class ClearingLogger(ILogger inner, ProgressDisplay? progress) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            progress?.Clear();
            inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
