using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Session;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm verify config.json [model]</c>: decode every file of one or all models and check its hash.</summary>
internal sealed class VerifyCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Argument<string> s_model = CommonOptions.ModelArgument("The model to verify (org/name); all stored models when omitted.", optional: true);
    private static readonly Option<int?> s_threads = CommonOptions.ThreadsOption();
    private static readonly Option<bool> s_json = CommonOptions.JsonOption();

    public VerifyCommand()
        : base("verify", "Check a store's integrity: every object present and every file of every model decoding to its recorded SHA-256.")
    {
        Arguments.Add(s_config);
        Arguments.Add(s_model);
        Options.Add(s_threads);
        Options.Add(s_json);
        CommonOptions.RequireOrder(this, s_config, s_model);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = CommonOptions.WithThreads(ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName), parseResult.GetValue(s_threads));
        string? modelText = parseResult.GetValue(s_model);
        using ProgressDisplay? progress = ProgressDisplay.ForTerminal("verify", parseResult);
        if (progress is not null && modelText is null)
        {
            // The job checks the stored models in the order list reads them: the progress line's n/N.
            progress.Items = new ListJob(config).Run(cancellationToken).Manifests.Select(m => m.Id.ToString()).ToList();
        }
        ILogger clearing = new ClearingLogger(logger, progress);
        var job = new VerifyJob(config)
        {
            Progress = progress,
            ModelChecked = (model, problems) =>
            {
                if (problems.Count == 0)
                {
                    clearing.LogInformation("{Model}: OK", model);
                }
                foreach (string problem in problems)
                {
                    clearing.LogError("{Problem}", problem);
                }
            },
        };
        VerifyReport report = modelText is null
            ? job.Run(null, cancellationToken)
            : ModelSuggestions.Run(config, modelText, modelId => job.Run(modelId, cancellationToken));
        foreach (string problem in report.DamagedManifests)
        {
            clearing.LogError("{Problem}", problem);
        }
        int bad = report.Models.Count(m => m.Problems.Count > 0);
        clearing.LogInformation("Verified {Count} models: {Good} intact, {Bad} damaged", report.Models.Count, report.Models.Count - bad, bad);
        if (parseResult.GetValue(s_json))
        {
            var document = new VerifyOutput(
                report.Models.Select(m => new VerifiedModel(m.ModelId.ToString(), m.Problems.Count == 0, m.Problems)).ToList(), report.DamagedManifests, report.Intact);
            JsonOutput.Write(parseResult.InvocationConfiguration.Output, document, CliJsonContext.Default.VerifyOutput);
        }
        return Task.FromResult(report.Intact ? ExitCodes.Success : ExitCodes.VerificationFailed);
    }
}
