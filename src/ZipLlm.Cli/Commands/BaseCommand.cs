using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Codecs.Zstd;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary>
/// A verb of the <c>zipllm</c> command: turns its parse result into a <see cref="Task{Int32}"/>
/// exit code, with the one exception contract of the library mapped to a one-line message.
/// </summary>
internal abstract class BaseCommand : Command
{
    /// <summary>Shared by every verb: how much to log.</summary>
    public static readonly Option<LogLevel> VerbosityOption = new("--verbosity", "-v")
    {
        Description = "Log level: Trace, Debug, Information, Warning, Error, Critical or None.",
        DefaultValueFactory = _ => LogLevel.Information,
        Recursive = true,
    };

    protected BaseCommand(string name, string description)
        : base(name, description)
    {
        SetAction(async (parseResult, cancellationToken) =>
        {
            // Every verb: SIGINT and SIGTERM cancel the token, the verb cleans up, and the run ends with 130.
            using var signals = new TerminationSignals(cancellationToken);
            CancellationToken token = signals.Token;
            using ILoggerFactory loggerFactory = Logging.CreateFactory(parseResult.GetValue(VerbosityOption));
            ILogger logger = loggerFactory.CreateLogger(GetType());
            // Other processes waiting for this run's locks see the verb's name; this run says what it waits for.
            using IDisposable lockScope = FileLock.BeginScope(Name, wait => LogLockWait(logger, wait));
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
                logger.LogCritical(ex, "Unexpected error: {Message}", ex.Message);
                return ExitCodes.InternalError;
            }
        });
    }

    /// <summary>Runs the verb, logging under the verb's own category; exceptions of the library's contract become one-line errors.</summary>
    protected abstract Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken);

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
