using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm gc config.json</c>: delete every object that no stored model needs.</summary>
internal sealed class GcCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Option<bool> s_dryRun = new("--dry-run", "-n")
    {
        Description = "Only count what would be deleted.",
    };

    public GcCommand()
        : base("gc", "Delete every object no stored model needs (left by removed models, or by a compress or remove that failed or was killed). " +
            "Waits for running compress runs; refuses to delete anything while a manifest is damaged.")
    {
        Arguments.Add(s_config);
        Options.Add(s_dryRun);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        ModelStore store = ModelStore.Open(config.StorageDir, create: false);
        bool dryRun = parseResult.GetValue(s_dryRun);
        GarbageReport report = store.CollectGarbage(dryRun, logger, cancellationToken);
        logger.LogInformation("{Verb} {Objects} unused objects, {MB:F1} MB; {Kept} objects are needed by stored models and were kept",
            dryRun ? "Would delete" : "Deleted", report.Objects, report.Bytes / 1e6, report.Kept);
        return Task.FromResult(ExitCodes.Success);
    }
}
