using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Config;
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
    }

    protected override Task<int> ExecuteAsync(ParseResult parseResult, ILogger logger, CancellationToken cancellationToken)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(parseResult.GetValue(s_config)!.FullName);
        string modelId = parseResult.GetValue(s_model)!;
        ModelId.ThrowIfInvalid(modelId);
        ModelStore store = ModelStore.Open(config.StorageDir, create: false);
        if (!store.Contains(modelId))
        {
            logger.LogError("Model {Model} is not in the store", modelId);
            return Task.FromResult(ExitCodes.UsageError);
        }
        GarbageReport report;
        try
        {
            report = store.Remove(modelId, logger, cancellationToken);
        }
        catch (KeyNotFoundException)
        {
            // Checked again under the store lock: another remove took it while this one waited for the lock.
            logger.LogError("Model {Model} is not in the store (removed by another process meanwhile)", modelId);
            return Task.FromResult(ExitCodes.UsageError);
        }
        logger.LogInformation("Removed {Model}: {Objects} objects deleted, {MB:F1} MB reclaimed", modelId, report.Objects, report.Bytes / 1e6);
        return Task.FromResult(ExitCodes.Success);
    }
}
