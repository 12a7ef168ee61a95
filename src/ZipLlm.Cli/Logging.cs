using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace ZipLlm.Cli;

/// <summary>Builds the console logger every verb uses: one plain line per message, on standard error.</summary>
internal static class Logging
{
    /// <summary>Environment variable giving the log level when no <c>--verbosity</c> or <c>--quiet</c> is given (as RUST_LOG was for the original).</summary>
    public const string LevelVariable = "ZIPLLM_LOG";

    /// <summary>The level names accepted, in the order of <see cref="LogLevel"/>.</summary>
    public const string LevelNames = "trace, debug, info, warning, error, critical or none";

    /// <summary>
    /// Reads a log level as people write it: any case, the names of <see cref="LogLevel"/> and the short forms
    /// info, warn and off (RUST_LOG's). Numbers are not levels.
    /// </summary>
    public static bool TryParseLevel(string? text, out LogLevel level)
    {
        level = (text ?? "").Trim().ToLowerInvariant() switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "info" or "information" => LogLevel.Information,
            "warn" or "warning" => LogLevel.Warning,
            "error" => LogLevel.Error,
            "critical" => LogLevel.Critical,
            "none" or "off" => LogLevel.None,
            _ => (LogLevel)(-1),
        };
        return level >= 0;
    }

    /// <summary>
    /// The level of a run: <paramref name="flag"/> (from --verbosity, or --quiet's warning) beats <see cref="LevelVariable"/>,
    /// which beats information; a variable that names no level is a usage error (<paramref name="problem"/>).
    /// </summary>
    public static bool TryResolveLevel(LogLevel? flag, string? variable, out LogLevel level, out string? problem)
    {
        problem = null;
        if (flag is { } given)
        {
            level = given;
            return true;
        }
        if (string.IsNullOrWhiteSpace(variable))
        {
            level = LogLevel.Information;
            return true;
        }
        if (TryParseLevel(variable, out level))
        {
            return true;
        }
        problem = $"{LevelVariable}='{variable}' is not a log level; use {LevelNames}";
        return false;
    }

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
