using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Jobs;
using ZipLlm.Reporting;
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
    private const int MaxGraceMinutes = 1_000_000;
    private static readonly Option<int> s_grace = GraceOption();

    public GcCommand()
        : base("gc", "Delete every object no stored model needs (left by removed models, or by a compress or remove that failed or was killed). " +
            "Waits for running compress runs; refuses to delete anything while a manifest is damaged.")
    {
        Arguments.Add(s_config);
        Options.Add(s_dryRun);
        Options.Add(s_grace);
    }

    private static Option<int> GraceOption()
    {
        var option = new Option<int>("--grace")
        {
            Description = "Keep unneeded objects written in the last MINUTES (0 deletes them all), " +
                "for a compress the store lock cannot see, such as one on another machine.",
            HelpName = "MINUTES",
            DefaultValueFactory = _ => 60,
        };
        option.Validators.Add(result =>
        {
            // From the token: a value that is not a number is reported by the parser itself.
            if (result.Tokens is [{ } token] && int.TryParse(token.Value, System.Globalization.CultureInfo.InvariantCulture, out int value)
                && value is < 0 or > MaxGraceMinutes)
            {
                result.AddError($"--grace must be from 0 to {MaxGraceMinutes} minutes, not {value}.");
            }
        });
        return option;
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        bool dryRun = parseResult.GetValue(s_dryRun);
        int grace = parseResult.GetValue(s_grace);
        GarbageReport report = new GcJob(config, logger).Run(dryRun, TimeSpan.FromMinutes(grace), cancellationToken);
        logger.LogInformation("{Verb} {Objects} unused objects, {Bytes}; {Kept} objects are needed by stored models and were kept",
            dryRun ? "Would delete" : "Deleted", report.Objects, Sizes.Format(report.Bytes), report.Kept);
        if (report.Recent > 0)
        {
            logger.LogInformation("Kept {Recent} unused objects written in the last {Grace} minutes (a compress may be writing them); --grace 0 deletes them",
                report.Recent, grace);
        }
        return Task.FromResult(ExitCodes.Success);
    }
}
