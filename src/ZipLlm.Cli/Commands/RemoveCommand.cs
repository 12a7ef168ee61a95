using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
using ZipLlm.Jobs;
using ZipLlm.Reporting;
using ZipLlm.Store;

namespace ZipLlm.Cli.Commands;

/// <summary><c>zipllm remove config.json org/model</c>: drop a model and reclaim what no other model uses.</summary>
internal sealed class RemoveCommand : BaseCommand
{
    private static readonly Argument<FileInfo> s_config = CommonOptions.ConfigArgument();
    private static readonly Argument<string> s_model = CommonOptions.ModelArgument("The model to remove (org/name).");

    public RemoveCommand()
        : base("remove", "Remove a model from the store and delete every object no other stored model needs.")
    {
        Arguments.Add(s_config);
        Arguments.Add(s_model);
        CommonOptions.RequireOrder(this, s_config, s_model);
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        string modelText = parseResult.GetValue(s_model)!;
        GarbageReport report = ModelSuggestions.Run(config, modelText, modelId => new RemoveJob(config, logger).Run(modelId, cancellationToken));
        logger.LogInformation("Removed {Model}: {Objects} objects deleted, {Bytes} reclaimed", modelText, report.Objects, Sizes.Format(report.Bytes));
        return Task.FromResult(ExitCodes.Success);
    }
}
