using Microsoft.Extensions.Logging;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Lineage;
using ZipLlm.Reporting;
using ZipLlm.Session;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>What a compress run did: one entry per model that was stored or skipped, and the failures.</summary>
/// <param name="Results">Models stored or already present.</param>
/// <param name="Failures">Each model that could not be stored, with the reason.</param>
/// <param name="Decisions">The base chosen for each model stored (with <see cref="BasesMode.Auto"/>), and why.</param>
internal sealed record CompressReport(IReadOnlyList<IngestResult> Results, IReadOnlyList<CompressFailure> Failures, IReadOnlyList<BaseDecision>? Decisions = null);

/// <summary>How compress takes base_ft.json.</summary>
internal enum BasesMode
{
    /// <summary>
    /// base_ft.json (optional) and the model card's <c>base_model</c> are hints, checked: each model is stored against the
    /// candidate its delta is smallest against (<see cref="LineagePlanner"/>), the hinted base unless another is clearly better.
    /// </summary>
    Auto,

    /// <summary>base_ft.json is law, as before lineage detection: a model it does not list under a base is stored alone.</summary>
    Strict,
}

/// <summary>What kind of fault kept a model out of the store.</summary>
internal enum CompressFailureKind
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
internal sealed record CompressFailure(ModelId ModelId, string Error, CompressFailureKind Kind);

/// <summary>
/// The <c>compress</c> job: stores every model of <c>models_to_process</c>, a base before its finetunes, skipping
/// models already stored. Each model's base is the one <c>base_ft.json</c> or its model card suggests, checked against
/// the other stored models, or found among them when nothing suggests one (<see cref="BasesMode"/>). A model that
/// fails (malformed file, missing folder) is reported and stores nothing; the others go on.
/// </summary>
internal sealed class CompressJob(ZipLlmConfig config, ILogger logger)
{
    /// <summary>Codec settings for new objects.</summary>
    public CodecOptions CodecOptions { get; init; } = CodecOptions.Default;

    /// <summary>Reports progress within each model.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>Opens the run's session instead of the config's store (tests: a bucket with short leases, on a clock of theirs).</summary>
    internal Func<StoreSessionOptions, StoreSession>? OpenSession { get; init; }

    /// <summary>How base_ft.json is taken: as hints checked against the other models (the default), or as law.</summary>
    public BasesMode Bases { get; init; } = BasesMode.Auto;

    /// <summary>The longest chain of bases a model may end (1 to <see cref="LineagePlanner.MaxMaxDepth"/>).</summary>
    public int MaxDepth { get; init; } = LineagePlanner.DefaultMaxDepth;

    /// <summary>Runs the job.</summary>
    /// <exception cref="InvalidDataException">The model list or base_ft.json is malformed.</exception>
    /// <exception cref="FileNotFoundException">The model list or base_ft.json is missing.</exception>
    /// <exception cref="NotSupportedException">The store is of a newer format.</exception>
    public CompressReport Run(CancellationToken cancellationToken = default)
    {
        ListedFamily family = ListedFamily.Load(config, Bases, logger);
        var options = new StoreSessionOptions { Codec = CodecOptions, Create = true, Logger = logger };
        using StoreSession session = OpenSession?.Invoke(options) ?? StoreSession.Open(config, options);
        ModelStore store = session.Store;
        store.SweepTemporaryFiles();
        using IDisposable storeLock = session.LockStore(exclusive: false, cancellationToken);
        using var planner = new LineagePlanner(store, CodecOptions, logger, MaxDepth);

        var results = new List<IngestResult>();
        var failures = new List<CompressFailure>();
        var decisions = new List<BaseDecision>();

        ModelRole ChooseRole(ModelId modelId, ModelSketch sketch)
        {
            ModelRole role = family.Roles.RoleOf(modelId);
            if (Bases == BasesMode.Strict)
            {
                return StrictRole(modelId, role, store);
            }
            BaseDecision decision = planner.Choose(modelId, sketch, family.HintFor(modelId));
            decisions.Add(decision);
            LogDecision(logger, decision);
            return decision.Base is { } chosen ? new ModelRole(ModelRoleKind.Finetune, chosen)
                : role.Kind == ModelRoleKind.Base ? role : ModelRole.Standalone;
        }

        void Process(ModelId modelId)
        {
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
                // Looked at before the model's folder is: a model stored already needs none (the session looks again under the model's lock).
                ModelRole stored = ModelRole.Standalone;
                IngestResult result = store.Contains(modelId)
                    ? new IngestResult(modelId, true, 0, 0, TimeSpan.Zero, 0, 0, 0, 0, 0)
                    : Store(session, modelId, family, sketch => stored = ChooseRole(modelId, sketch), planner, cancellationToken);
                results.Add(result);
                if (result.Skipped)
                {
                    logger.LogInformation("{Model} is already stored; skipped", modelId);
                    return;
                }
                logger.LogInformation(
                    "Stored {Model} ({Role}{Base}): {In} in, {Stored} stored, ratio {Ratio}, {Seconds:F1} s, {Rate}; " +
                    "{Dedup}/{Tensors} tensors deduplicated, {Deltas} as deltas, {DedupFiles}/{Files} files already stored; " +
                    "chunks: {Difference} ordered difference, {Xor} XOR, {Solo} solo",
                    modelId, stored.Kind, stored.BaseId is { } b ? " of " + b : "", Sizes.Format(result.OriginalBytes), Sizes.Format(result.AddedBytes), result.RatioText, result.Elapsed.TotalSeconds,
                    Sizes.Rate(result.MegabytesPerSecond * 1e6), result.DedupTensors, result.Tensors, result.DeltaTensors, result.DedupFiles, result.Files,
                    result.Chunks?.OrderedDifference ?? 0, result.Chunks?.Xor ?? 0, result.Chunks?.Solo ?? 0);
            }
            catch (Exception ex) when (ex is IOException or KeyNotFoundException && !cancellationToken.IsCancellationRequested && StoreSession.LockLost(storeLock))
            {
                // Not this model's failure, nor damage: another process's remove or gc took what it built on. The run ends (exit 4).
                throw ex as StoreLockLostException ?? new StoreLockLostException(session.Location, $"storing {modelId}", ex);
            }
            catch (Exception ex) when (FailureKind(ex) is { } kind && !cancellationToken.IsCancellationRequested)
            {
                logger.LogError("{Model}: not stored: {Reason}", modelId, ex.Message);
                failures.Add(new CompressFailure(modelId, ex.Message, kind));
            }
        }

        family.Walk(store.Contains, Process);
        return new CompressReport(results, failures, decisions);
    }

    /// <summary>Stores one model through the session; with lineage, it is then a candidate for the models after it.</summary>
    private IngestResult Store(StoreSession session, ModelId modelId, ListedFamily family, Func<ModelSketch, ModelRole> roleFor, LineagePlanner planner,
        CancellationToken cancellationToken)
    {
        ModelSource source = config.ResolveModel(modelId, family.Models.RevisionOf(modelId));
        ModelSketch? sketch = null;
        IngestResult result = session.Compress(modelId, source.Folder, s => roleFor(sketch = s), source.Commit, Progress, cancellationToken);
        if (Bases == BasesMode.Auto && sketch is not null)
        {
            // The manifest read back: another writer's, if it won the race.
            Manifest manifest = session.Store.ReadManifest(modelId);
            planner.Add(modelId, sketch, LineagePlanner.DepthOf(manifest), manifest);
        }
        return result;
    }

    /// <summary>
    /// With <see cref="BasesMode.Strict"/>: the base base_ft.json names, when stored; re-based to its nearest ancestor
    /// within <see cref="MaxDepth"/> when its chain is already that long.
    /// </summary>
    private ModelRole StrictRole(ModelId modelId, ModelRole role, ModelStore store)
    {
        if (role is not { Kind: ModelRoleKind.Finetune, BaseId: { } baseId })
        {
            return role;
        }
        // Walked up by the manifests: a base whose own base was removed ends the walk (alone).
        ModelId? rebased = LineagePlanner.StrictBase(baseId, id =>
        {
            if (!store.Contains(id))
            {
                return null;
            }
            Manifest manifest = store.ReadManifest(id);
            return (LineagePlanner.DepthOf(manifest), manifest.BaseId);
        }, MaxDepth);
        if (rebased is null && !store.Contains(baseId))
        {
            logger.LogWarning("{Model}: its base {Base} is neither stored nor in {ModelDir}; storing it without deltas", modelId, baseId, config.ModelDir);
        }
        else if (rebased != baseId)
        {
            logger.LogWarning("{Model}: its base {Base} already ends a chain of {Limit} bases (--max-depth); stored against {Ancestor} instead",
                modelId, baseId, MaxDepth, rebased?.ToString() ?? "nothing (alone)");
        }
        return role with { BaseId = rebased };
    }

    /// <summary>Logs a choice of base: a warning when it is not the hinted one.</summary>
    internal static void LogDecision(ILogger logger, BaseDecision decision)
    {
        string target = decision.Base?.ToString() ?? "none (stored alone)";
        if (decision.Hint is { } hint && decision.Base != hint.Base)
        {
            logger.LogWarning("{Model}: base {Base}, not {Hint}: {Reason}", decision.Model, target, hint.Base, decision.Reason);
        }
        else
        {
            logger.LogInformation("{Model}: base {Base}: {Reason}", decision.Model, target, decision.Reason);
        }
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
    internal static CompressFailureKind? FailureKind(Exception ex) => ex switch
    {
        InvalidDataException or EndOfStreamException or NotSupportedException => CompressFailureKind.InvalidInput,
        IOException or UnauthorizedAccessException => CompressFailureKind.Io,
        _ => null,
    };
}
