using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Codecs.Zstd;

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
            using ILoggerFactory loggerFactory = Logging.CreateFactory(parseResult.GetValue(VerbosityOption));
            ILogger logger = loggerFactory.CreateLogger(GetType());
            try
            {
                if (logger.IsEnabled(LogLevel.Debug))
                {
                    logger.LogDebug("zstd: {Zstd}", ZstdContext.Describe());
                }
                return await ExecuteAsync(parseResult, logger, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                logger.LogError("Cancelled.");
                return ExitCodes.Cancelled;
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
}
