using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Jobs;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm compress config.json</c>: store every listed model, a base before its finetunes.</summary>
internal sealed class CompressCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Option<int?> s_threads = CommonOptions.ThreadsOption();

    public CompressCommand()
        : base("compress", "Store every model listed in models_to_process; models already stored are skipped.")
    {
        Arguments.Add(s_config);
        Options.Add(s_threads);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        config = CommonOptions.WithThreads(config, parseResult.GetValue(s_threads));
        using ProgressDisplay? progress = ProgressDisplay.ForTerminal("compress");
        logger = new ClearingLogger(logger, progress);
        var compressor = new CompressJob(config, logger) { Progress = progress };
        CompressReport report = compressor.Run(cancellationToken);

        long original = report.Results.Sum(r => r.OriginalBytes), added = report.Results.Sum(r => r.AddedBytes);
        double seconds = report.Results.Sum(r => r.Elapsed.TotalSeconds);
        int stored = report.Results.Count(r => !r.Skipped), skipped = report.Results.Count(r => r.Skipped);
        logger.LogInformation(
            "Done: {Stored} stored, {Skipped} already stored, {Failed} failed; {InMB:F1} MB in, {OutMB:F1} MB added, ratio {Ratio}, {MBps:F0} MB/s",
            stored, skipped, report.Failures.Count, original / 1e6, added / 1e6, added == 0 ? "-" : $"{(double)original / added:F2}x",
            seconds <= 0 ? 0 : original / 1e6 / seconds);
        if (report.Failures.Count > 0)
        {
            foreach (CompressFailure failure in report.Failures)
            {
                logger.LogError("Failed: {Model}: {Error}", failure.ModelId, failure.Error);
            }
        }
        return Task.FromResult(ExitCodeOf(report));
    }

    /// <summary>
    /// 0 when every model is stored; when none is (stored now or before) and every failure is of one kind, that kind's
    /// code (invalid input 3, I/O 4); otherwise, some stored or failures of both kinds, partial failure (5).
    /// </summary>
    internal static int ExitCodeOf(CompressReport report)
    {
        if (report.Failures.Count == 0)
        {
            return ExitCodes.Success;
        }
        if (report.Results.Count > 0)
        {
            return ExitCodes.PartialFailure;
        }
        if (report.Failures.All(f => f.Kind == CompressFailureKind.Io))
        {
            return ExitCodes.IoError;
        }
        return report.Failures.All(f => f.Kind == CompressFailureKind.InvalidInput) ? ExitCodes.InvalidInput : ExitCodes.PartialFailure;
    }
}
