using Microsoft.Extensions.Logging;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Reporting;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>What a compress run did: one entry per model that was stored or skipped, and the failures.</summary>
/// <param name="Results">Models stored or already present.</param>
/// <param name="Failures">Each model that could not be stored, with the reason.</param>
public sealed record CompressReport(IReadOnlyList<IngestResult> Results, IReadOnlyList<CompressFailure> Failures);

/// <summary>What kind of fault kept a model out of the store.</summary>
public enum CompressFailureKind
{
    /// <summary>The model's files are malformed, truncated or unsupported (<see cref="InvalidDataException"/>, <see cref="EndOfStreamException"/>, <see cref="NotSupportedException"/>).</summary>
    InvalidInput,

    /// <summary>A file or folder could not be read or written: the model's folder is missing, a disk is full (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>).</summary>
    Io,
}

/// <summary>A model that could not be stored.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Error">One-line reason.</param>
/// <param name="Kind">Whether its input was at fault or reading and writing files failed.</param>
public sealed record CompressFailure(ModelId ModelId, string Error, CompressFailureKind Kind);

/// <summary>
/// The <c>compress</c> job: stores every model of <c>models_to_process</c> with the roles of
/// <c>base_ft.json</c>, a base before its finetunes, skipping models already stored. A model that
/// fails (malformed file, missing folder) is reported and stores nothing; the others go on.
/// </summary>
public sealed class CompressJob(ZipLlmConfig config, ILogger logger)
{
    /// <summary>Codec settings for new objects.</summary>
    public CodecOptions CodecOptions { get; init; } = CodecOptions.Default;

    /// <summary>Reports progress within each model.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>Runs the job.</summary>
    /// <exception cref="InvalidDataException">The model list or base_ft.json is malformed.</exception>
    /// <exception cref="FileNotFoundException">The model list or base_ft.json is missing.</exception>
    /// <exception cref="NotSupportedException">The store is of a newer format.</exception>
    public CompressReport Run(CancellationToken cancellationToken = default)
    {
        ModelList models = ModelList.Load(ResolveModelList(config, logger));
        if (!File.Exists(config.BaseFtPath))
        {
            throw new FileNotFoundException($"{config.BaseFtPath} (base_ft_path in {config.ConfigPath}) does not exist; run setup_test_models.sh or write it.", config.BaseFtPath);
        }
        BaseFtMap roles = BaseFtMap.Load(config.BaseFtPath);
        ModelStore store = StoreAccess.Open(config, create: true);
        store.SweepTemporaryFiles();
        using IDisposable storeLock = store.LockStore(exclusive: false, cancellationToken);
        using var pool = new WorkerPool(config.Threads, CodecOptions);
        var ingester = new ModelIngester(store, pool, logger) { Progress = Progress };

        var results = new List<IngestResult>();
        var failures = new List<CompressFailure>();
        var finished = new HashSet<ModelId>();

        void Process(ModelId modelId)
        {
            if (!finished.Add(modelId))
            {
                return;
            }
            ModelRole role = roles.RoleOf(modelId);
            try
            {
                if (role is { Kind: ModelRoleKind.Finetune, BaseId: { } baseId } && !store.Contains(baseId))
                {
                    if (config.HasModel(baseId))
                    {
                        logger.LogInformation("{Model} needs its base {Base}, which is not stored yet: storing the base first", modelId, baseId);
                        Process(baseId);
                    }
                    if (!store.Contains(baseId))
                    {
                        logger.LogWarning("{Model}: its base {Base} is neither stored nor in {ModelDir}; storing it without deltas", modelId, baseId, config.ModelDir);
                        role = role with { BaseId = null };
                    }
                }
                cancellationToken.ThrowIfCancellationRequested();
                using IDisposable modelLock = store.LockModel(modelId, cancellationToken);
                if (store.Contains(modelId))
                {
                    logger.LogInformation("{Model} is already stored; skipped", modelId);
                    results.Add(new IngestResult(modelId, true, 0, 0, TimeSpan.Zero, 0, 0, 0, 0, 0));
                    return;
                }
                ModelSource source = config.ResolveModel(modelId, models.RevisionOf(modelId));
                IngestResult result = ingester.Ingest(modelId, source.Folder, role, source.Commit, cancellationToken);
                results.Add(result);
                logger.LogInformation(
                    "Stored {Model} ({Role}): {In} in, {Stored} stored, ratio {Ratio}, {Seconds:F1} s, {Rate}; " +
                    "{Dedup}/{Tensors} tensors deduplicated, {Deltas} as deltas, {DedupFiles}/{Files} files already stored; " +
                    "chunks: {Difference} ordered difference, {Xor} XOR, {Solo} solo",
                    modelId, role.Kind, Sizes.Format(result.OriginalBytes), Sizes.Format(result.AddedBytes), result.RatioText, result.Elapsed.TotalSeconds,
                    Sizes.Rate(result.MegabytesPerSecond * 1e6), result.DedupTensors, result.Tensors, result.DeltaTensors, result.DedupFiles, result.Files,
                    result.Chunks?.OrderedDifference ?? 0, result.Chunks?.Xor ?? 0, result.Chunks?.Solo ?? 0);
            }
            catch (Exception ex) when (FailureKind(ex) is { } kind && !cancellationToken.IsCancellationRequested)
            {
                logger.LogError("{Model}: not stored: {Reason}", modelId, ex.Message);
                failures.Add(new CompressFailure(modelId, ex.Message, kind));
            }
        }

        foreach (ModelId modelId in models.Models)
        {
            Process(modelId);
        }
        return new CompressReport(results, failures);
    }

    /// <summary>
    /// The model list to read: <c>models_to_process</c>, or the synthetic stand-in setup wrote for it (said so as a
    /// warning, so no run on synthetic models passes for one on the configured list).
    /// </summary>
    internal static string ResolveModelList(ZipLlmConfig config, ILogger logger)
    {
        ModelListChoice choice = StandInModelList.Resolve(config);
        if (choice.IsStandIn)
        {
            logger.LogWarning("Reading the synthetic family's list {StandIn} instead of {List} ({Reason}); run setup_test_models.sh to get the listed models",
                choice.Path, config.ModelsToProcess, choice.StandInReason);
        }
        else if (choice.StaleStandIn is { } stale)
        {
            logger.LogInformation("{StandIn} stood in for an earlier {List}, which has changed since: reading {List}", stale, config.ModelsToProcess, config.ModelsToProcess);
        }
        return choice.Path;
    }

    /// <summary>The kind of a failure that belongs to one model, after which the run goes on with the others; null for any other.</summary>
    private static CompressFailureKind? FailureKind(Exception ex) => ex switch
    {
        InvalidDataException or EndOfStreamException or NotSupportedException => CompressFailureKind.InvalidInput,
        IOException or UnauthorizedAccessException => CompressFailureKind.Io,
        _ => null,
    };
}
