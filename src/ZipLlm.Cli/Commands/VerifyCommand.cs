using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Jobs;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm verify config.json [model]</c>: decode every file of one or all models and check its hash.</summary>
internal sealed class VerifyCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Argument<string?> s_model = new("model")
    {
        Description = "The model to verify (org/name); all stored models when omitted.",
        Arity = ArgumentArity.ZeroOrOne,
    };
    private static readonly Option<int?> s_threads = CommonOptions.ThreadsOption();

    public VerifyCommand()
        : base("verify", "Check a store's integrity: every object present and every file of every model decoding to its recorded SHA-256.")
    {
        Arguments.Add(s_config);
        Arguments.Add(s_model);
        Options.Add(s_threads);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = CommonOptions.WithThreads(ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName), parseResult.GetValue(s_threads));
        ModelId? modelId = parseResult.GetValue(s_model) is { } text ? ModelId.Parse(text) : null;
        using ProgressDisplay? progress = ProgressDisplay.ForTerminal("verify");
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
        VerifyReport report = job.Run(modelId, cancellationToken);
        foreach (string problem in report.DamagedManifests)
        {
            clearing.LogError("{Problem}", problem);
        }
        int bad = report.Models.Count(m => m.Problems.Count > 0);
        clearing.LogInformation("Verified {Count} models: {Good} intact, {Bad} damaged", report.Models.Count, report.Models.Count - bad, bad);
        return Task.FromResult(report.Intact ? ExitCodes.Success : ExitCodes.VerificationFailed);
    }
}
