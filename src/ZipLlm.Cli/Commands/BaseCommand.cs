using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Codecs.Zstd;
using ZipLlm.Store.Backends;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary>
/// A verb of the <c>zipllm</c> command: turns its parse result into a <see cref="Task{Int32}"/>
/// exit code, with the one exception contract of the library mapped to a one-line message.
/// </summary>
internal abstract class BaseCommand : Command
{
    /// <summary>Shared by every verb: how much to log.</summary>
    public static readonly Option<LogLevel?> VerbosityOption = new("--verbosity", "-v")
    {
        Description = $"Log level: {Logging.LevelNames} (default: ${Logging.LevelVariable}, else info).",
        Recursive = true,
        CustomParser = ParseLevel,
    };

    /// <summary>Shared by every verb: only warnings and errors, and no progress line.</summary>
    public static readonly Option<bool> QuietOption = new("--quiet", "-q")
    {
        Description = "Log only warnings and errors, and draw no progress line (--verbosity warning, quieter).",
        Recursive = true,
    };

    protected BaseCommand(string name, string description)
        : base(name, description)
    {
        Validators.Add(result =>
        {
            if (result.GetResult(QuietOption) is { Implicit: false } && result.GetResult(VerbosityOption) is { Implicit: false })
            {
                result.AddError("--quiet and --verbosity say the same thing: give one of them");
            }
        });
        SetAction(async (parseResult, cancellationToken) =>
        {
            LogLevel? flag = parseResult.GetValue(QuietOption) ? LogLevel.Warning : parseResult.GetValue(VerbosityOption);
            if (!Logging.TryResolveLevel(flag, Environment.GetEnvironmentVariable(Logging.LevelVariable), out LogLevel level, out string? problem))
            {
                await parseResult.InvocationConfiguration.Error.WriteLineAsync($"zipllm: {problem}").ConfigureAwait(false);
                return ExitCodes.UsageError;
            }
            // Every verb: SIGINT and SIGTERM cancel the token, the verb cleans up, and the run ends with 130.
            using var signals = new TerminationSignals(cancellationToken);
            CancellationToken token = signals.Token;
            using ILoggerFactory loggerFactory = Logging.CreateFactory(level);
            ILogger logger = loggerFactory.CreateLogger(GetType());
            // Other processes waiting for this run's locks see the verb's name; this run says what it waits for.
            using IDisposable lockScope = FileLock.BeginScope(Name, wait => LogLockWait(logger, wait), notice => logger.LogWarning("{Notice}", notice));
            try
            {
                if (logger.IsEnabled(LogLevel.Debug))
                {
                    logger.LogDebug("zstd: {Zstd}", ZstdContext.Describe());
                }
                int exitCode = await ExecuteAsync(parseResult, logger, token).ConfigureAwait(false);
                // A signal that came after the verb's last look at the token still means the user asked to stop.
                return token.IsCancellationRequested ? Cancelled(logger, signals) : exitCode;
            }
            catch (Exception ex) when (token.IsCancellationRequested)
            {
                // Whatever the cancellation surfaced as (an interrupted wait, a task given up), it is the cancellation.
                logger.LogDebug(ex, "Stopped by cancellation: {Message}", ex.Message);
                return Cancelled(logger, signals);
            }
            catch (Exception ex) when (ErrorMapping.TryMap(ex, out int exitCode))
            {
                logger.LogError("{Message}", ErrorMapping.Describe(ex));
                return exitCode;
            }
            catch (Exception ex)
            {
                // Not one of the failures a user can act on: a bug. One line, and the stack trace for a report at -v debug.
                logger.LogCritical("Unexpected error ({Type}): {Message}; run with -v debug for the stack trace", ex.GetType().Name, ex.Message);
                logger.LogDebug(ex, "Stack trace of the unexpected error");
                return ExitCodes.InternalError;
            }
        });
    }

    /// <summary>Runs the verb, logging under the verb's own category; exceptions of the library's contract become one-line errors.</summary>
    protected abstract Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken);

    private static LogLevel? ParseLevel(System.CommandLine.Parsing.ArgumentResult result)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (Logging.TryParseLevel(text, out LogLevel level))
        {
            return level;
        }
        result.AddError($"--verbosity: '{text}' is not a log level; use {Logging.LevelNames}");
        return null;
    }

    private static int Cancelled(ILogger logger, TerminationSignals signals)
    {
        if (signals.Received is { } signal)
        {
            logger.LogDebug("Received {Signal}", signal);
        }
        logger.LogError("Cancelled.");
        return ExitCodes.Cancelled;
    }

    private static void LogLockWait(ILogger logger, FileLockWait wait) =>
        logger.LogInformation("Waiting for the {Lock} lock: held by {Holders}; Ctrl+C to stop", wait.LockName, wait.DescribeHolders());
}
