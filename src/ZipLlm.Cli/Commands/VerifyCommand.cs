using System.CommandLine;
using Microsoft.Extensions.Logging;
using ZipLlm.Codecs;
using ZipLlm.Config;
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
        ModelStore store = ModelStore.Open(config.StorageDir, create: false);
        using IDisposable storeLock = store.LockStore(exclusive: false, cancellationToken);
        string? only = parseResult.GetValue(s_model);
        List<string> models;
        if (only is not null)
        {
            ModelId.ThrowIfInvalid(only);
            if (!store.Contains(only))
            {
                logger.LogError("Model {Model} is not in the store", only);
                return Task.FromResult(ExitCodes.UsageError);
            }
            models = [only];
        }
        else
        {
            models = ListManifestIds(store, logger, out bool corruptManifest);
            if (corruptManifest)
            {
                return Task.FromResult(ExitCodes.VerificationFailed);
            }
        }

        using var pool = new WorkerPool(config.Threads);
        using ProgressDisplay? progress = ProgressDisplay.ForTerminal("verify");
        logger = new ClearingLogger(logger, progress);
        var restorer = new ModelRestorer(store, pool);
        int bad = 0;
        foreach (string model in models)
        {
            IReadOnlyList<string> problems = restorer.Verify(model, progress, cancellationToken);
            if (problems.Count == 0)
            {
                logger.LogInformation("{Model}: OK", model);
                continue;
            }
            bad++;
            foreach (string problem in problems)
            {
                logger.LogError("{Problem}", problem);
            }
        }
        logger.LogInformation("Verified {Count} models: {Good} intact, {Bad} damaged", models.Count, models.Count - bad, bad);
        return Task.FromResult(bad == 0 ? ExitCodes.Success : ExitCodes.VerificationFailed);
    }

    private static List<string> ListManifestIds(ModelStore store, ILogger logger, out bool corrupt)
    {
        corrupt = false;
        try
        {
            return store.ReadAllManifests().Select(m => m.Id).ToList();
        }
        catch (Exception ex) when (ex is InvalidDataException or NotSupportedException)
        {
            logger.LogError("{Message}", ex.Message);
            corrupt = true;
            return [];
        }
    }
}
