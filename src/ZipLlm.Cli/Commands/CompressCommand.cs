using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Lineage;
using ZipLlm.Reporting;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm compress config.json</c>: store every listed model, a base before its finetunes.</summary>
internal sealed class CompressCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Option<int?> s_threads = CommonOptions.ThreadsOption();
    private static readonly Option<bool> s_json = CommonOptions.JsonOption();
    private static readonly Option<BasesMode> s_bases = CommonOptions.BasesOption();
    private static readonly Option<int> s_maxDepth = CommonOptions.MaxDepthOption();

    public CompressCommand()
        : base("compress", "Store every model listed in models_to_process; models already stored are skipped.")
    {
        Arguments.Add(s_config);
        Options.Add(s_threads);
        Options.Add(s_json);
        Options.Add(s_bases);
        Options.Add(s_maxDepth);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        config = CommonOptions.WithThreads(config, parseResult.GetValue(s_threads));
        using ProgressDisplay? progress = ProgressDisplay.ForTerminal("compress", parseResult);
        if (progress is not null)
        {
            progress.Items = ListedModels(config);
        }
        logger = new ClearingLogger(logger, progress);
        var compressor = new CompressJob(config, logger)
        {
            Progress = progress,
            Bases = parseResult.GetValue(s_bases),
            MaxDepth = parseResult.GetValue(s_maxDepth),
        };
        CompressReport report = compressor.Run(cancellationToken);

        long original = report.Results.Sum(r => r.OriginalBytes), added = report.Results.Sum(r => r.AddedBytes);
        double seconds = report.Results.Sum(r => r.Elapsed.TotalSeconds);
        int stored = report.Results.Count(r => !r.Skipped), skipped = report.Results.Count(r => r.Skipped);
        logger.LogInformation(
            "Done: {Stored} stored, {Skipped} already stored, {Failed} failed; {In} in, {Added} added, ratio {Ratio}, {Rate}",
            stored, skipped, report.Failures.Count, Sizes.Format(original), Sizes.Format(added), Sizes.Ratio(original, added),
            Sizes.Rate(seconds <= 0 ? 0 : original / seconds));
        if (report.Failures.Count > 0)
        {
            foreach (CompressFailure failure in report.Failures)
            {
                logger.LogError("Failed: {Model}: {Error}", failure.ModelId, failure.Error);
            }
        }
        int exitCode = ExitCodeOf(report);
        if (parseResult.GetValue(s_json))
        {
            JsonOutput.Write(parseResult.InvocationConfiguration.Output, ToJson(report, exitCode), CliJsonContext.Default.CompressOutput);
        }
        return Task.FromResult(exitCode);
    }

    /// <summary>The models the run works through, for the progress line's n/N; none when the list does not read (the job says why).</summary>
    private static IReadOnlyList<string> ListedModels(ZipLlmConfig config)
    {
        try
        {
            return ModelList.Load(StandInModelList.Resolve(config).Path).Models.Select(m => m.ToString()).ToList();
        }
        catch (Exception ex) when (ErrorMapping.TryMap(ex, out _))
        {
            return [];
        }
    }

    private static CompressOutput ToJson(CompressReport report, int exitCode)
    {
        long original = report.Results.Sum(r => r.OriginalBytes), added = report.Results.Sum(r => r.AddedBytes);
        return new CompressOutput(
            report.Results.Select(r => new CompressedModel(
                r.ModelId.ToString(), r.Skipped, r.OriginalBytes, r.AddedBytes, Sizes.RatioValue(r.OriginalBytes, r.AddedBytes),
                !r.Skipped && Sizes.IsDedup(r.OriginalBytes, r.AddedBytes), r.Elapsed.TotalSeconds,
                r.Files, r.DedupFiles, r.Tensors, r.DedupTensors, r.DeltaTensors,
                report.Decisions?.FirstOrDefault(d => d.Model == r.ModelId) is { } d ? BasesCommand.ToJson(d) : null)).ToList(),
            report.Failures.Select(CompressFailureOutput.Of).ToList(),
            report.Results.Count(r => !r.Skipped), report.Results.Count(r => r.Skipped), report.Failures.Count,
            original, added, Sizes.RatioValue(original, added), report.Results.Sum(r => r.Elapsed.TotalSeconds), exitCode);
    }

    /// <summary>
    /// 0 when every model is stored; when none is (stored now or before) and every failure is of one kind, that kind's
    /// code (invalid input 3, I/O 4); otherwise, some stored or failures of both kinds, partial failure (5).
    /// </summary>
    internal static int ExitCodeOf(CompressReport report) => ExitCodeOf(report.Results.Count, report.Failures);

    /// <summary>The same rule for any verb that works through the listed models: <paramref name="done"/> of them went through.</summary>
    internal static int ExitCodeOf(int done, IReadOnlyList<CompressFailure> failures)
    {
        if (failures.Count == 0)
        {
            return ExitCodes.Success;
        }
        if (done > 0)
        {
            return ExitCodes.PartialFailure;
        }
        if (failures.All(f => f.Kind == CompressFailureKind.Io))
        {
            return ExitCodes.IoError;
        }
        return failures.All(f => f.Kind == CompressFailureKind.InvalidInput) ? ExitCodes.InvalidInput : ExitCodes.PartialFailure;
    }
}
