using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Lineage;
using ZipLlm.Reporting;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm bases config.json</c>: which base each listed model would take, and what each candidate would cost; stores nothing.</summary>
internal sealed class BasesCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Option<bool> s_json = CommonOptions.JsonOption();
    private static readonly Option<BasesMode> s_bases = CommonOptions.BasesOption();
    private static readonly Option<int> s_maxDepth = CommonOptions.MaxDepthOption();

    public BasesCommand()
        : base("bases", "Show which base compress would store each listed model against, with the estimated bytes against each candidate; stores nothing.")
    {
        Arguments.Add(s_config);
        Options.Add(s_json);
        Options.Add(s_bases);
        Options.Add(s_maxDepth);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        BasesReport report = new BasesJob(config, logger)
        {
            Bases = parseResult.GetValue(s_bases),
            MaxDepth = parseResult.GetValue(s_maxDepth),
        }.Run(cancellationToken);
        TextWriter output = parseResult.InvocationConfiguration.Output;
        if (parseResult.GetValue(s_json))
        {
            JsonOutput.Write(output, new BasesOutput(
                report.Decisions.Select(ToJson).ToList(),
                report.Stored.Select(s => new StoredBaseOutput(s.Model.ToString(), s.Base?.ToString())).ToList(),
                report.Failures.Select(CompressFailureOutput.Of).ToList()),
                CliJsonContext.Default.BasesOutput);
        }
        else
        {
            WriteText(output, report);
        }
        return Task.FromResult(CompressCommand.ExitCodeOf(report.Decisions.Count + report.Stored.Count, report.Failures));
    }

    internal static BaseChoiceOutput ToJson(BaseDecision d) => new(
        d.Model.ToString(), d.Base?.ToString(), d.Depth, d.Hint?.Base.ToString(), d.Hint?.Source, d.TensorBytes, d.SoloBytes, d.EstimatedBytes, d.Reason,
        d.Candidates.Select(c => new CandidateOutput(c.Candidate.ToString(), c.Depth, c.EstimatedBytes, c.Coded)).ToList());

    private static void WriteText(TextWriter output, BasesReport report)
    {
        foreach ((ModelId model, ModelId? stored) in report.Stored)
        {
            output.WriteLine($"{model}: stored already, {(stored is { } b ? "against " + b : "alone")}");
        }
        foreach (BaseDecision d in report.Decisions)
        {
            output.WriteLine($"{d.Model} -> {d.Base?.ToString() ?? "none (alone)"}: about {Sizes.Format(d.EstimatedBytes)} of {Sizes.Format(d.TensorBytes)} of tensors; {d.Reason}");
            output.WriteLine($"    {"alone",-40} {Sizes.Format(d.SoloBytes),10}");
            foreach (CandidateEstimate c in d.Candidates)
            {
                output.WriteLine($"    {c.Candidate.ToString(),-40} {Sizes.Format(c.EstimatedBytes),10}{(c.Coded ? "" : "  (quick estimate)")}{(c.Depth > 0 ? $"  depth {c.Depth}" : "")}");
            }
        }
    }
}
