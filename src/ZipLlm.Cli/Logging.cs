using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace ZipLlm.Cli;

/// <summary>Builds the console logger every verb uses: one plain line per message, on standard error.</summary>
internal static class Logging
{
    // Built by hand rather than through LoggerFactory.Create: the generic host's dependency injection and
    // options binding cost about 40 ms of start-up per run, a tenth of restoring a small model.
    public static ILoggerFactory CreateFactory(LogLevel minimumLevel)
    {
        var options = new ConsoleLoggerOptions
        {
            FormatterName = PlainFormatter.FormatterName,
            // Everything goes to stderr, so stdout carries only a verb's results (tables, sizes).
            LogToStandardErrorThreshold = LogLevel.Trace,
        };
        var provider = new ConsoleLoggerProvider(new FixedOptions(options), [new PlainFormatter()]);
        var factory = new LoggerFactory([], new LoggerFilterOptions { MinLevel = minimumLevel });
        // Added rather than passed to the constructor: only then does disposing the factory dispose the provider,
        // which flushes its queue; otherwise the last lines of a run can be lost at exit.
        factory.AddProvider(provider);
        return factory;
    }

    /// <summary>Options that never change, for the console provider's options monitor.</summary>
    private sealed class FixedOptions(ConsoleLoggerOptions value) : IOptionsMonitor<ConsoleLoggerOptions>
    {
        public ConsoleLoggerOptions CurrentValue => value;

        public ConsoleLoggerOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<ConsoleLoggerOptions, string?> listener) => null;
    }

    /// <summary>
    /// "error: message" for problems, the bare message for information: what a person reads in a terminal,
    /// without the category names and event ids of the default formatter. Debug lines keep their category.
    /// </summary>
    private sealed class PlainFormatter() : ConsoleFormatter(FormatterName)
    {
        public const string FormatterName = "zipllm";

        public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
        {
            string message = logEntry.Formatter(logEntry.State, logEntry.Exception);
            string prefix = logEntry.LogLevel switch
            {
                LogLevel.Critical => "critical: ",
                LogLevel.Error => "error: ",
                LogLevel.Warning => "warning: ",
                LogLevel.Debug or LogLevel.Trace => $"{logEntry.LogLevel.ToString().ToLowerInvariant()} [{ShortCategory(logEntry.Category)}]: ",
                _ => "",
            };
            textWriter.Write(prefix);
            textWriter.WriteLine(message);
            if (logEntry.Exception is { } exception && logEntry.LogLevel >= LogLevel.Critical)
            {
                textWriter.WriteLine(exception.ToString());
            }
        }

        private static string ShortCategory(string category) => category[(category.LastIndexOf('.') + 1)..];
    }
}
