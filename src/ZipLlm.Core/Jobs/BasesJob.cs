using Microsoft.Extensions.Logging;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Lineage;
using ZipLlm.Session;
using ZipLlm.Store;

namespace ZipLlm.Jobs;

/// <summary>What <see cref="BasesJob"/> found: per listed model, the base it would take (or took, when stored) and why.</summary>
/// <param name="Decisions">One per listed model not stored yet, in the order compress would store them.</param>
/// <param name="Stored">Listed models already stored, with the base they were stored against.</param>
/// <param name="Failures">Models that could not be sketched (a missing folder, a malformed file).</param>
internal sealed record BasesReport(IReadOnlyList<BaseDecision> Decisions, IReadOnlyList<(ModelId Model, ModelId? Base)> Stored, IReadOnlyList<CompressFailure> Failures);

/// <summary>
/// The <c>bases</c> job: plans what <see cref="CompressJob"/> would choose for each listed model's base, without storing
/// anything: the candidates are the models stored and those listed before it (planned as if stored), each scored on the
/// sketches, with the estimated bytes against each.
/// </summary>
internal sealed class BasesJob(ZipLlmConfig config, ILogger logger)
{
    /// <summary>Codec settings the estimates assume.</summary>
    public CodecOptions CodecOptions { get; init; } = CodecOptions.Default;

    /// <summary>As <see cref="CompressJob.Bases"/>.</summary>
    public BasesMode Bases { get; init; } = BasesMode.Auto;

    /// <summary>As <see cref="CompressJob.MaxDepth"/>.</summary>
    public int MaxDepth { get; init; } = LineagePlanner.DefaultMaxDepth;

    /// <summary>Runs the job. Reads the store (when there is one) and the model folders; writes nothing.</summary>
    /// <exception cref="FileNotFoundException">The model list is missing (or base_ft.json, with <see cref="BasesMode.Strict"/>).</exception>
    /// <exception cref="InvalidDataException">The model list or base_ft.json is malformed.</exception>
    public BasesReport Run(CancellationToken cancellationToken = default)
    {
        ListedFamily family = ListedFamily.Load(config, Bases, logger);
        using StoreSession? session = OpenIfAny();
        ModelStore? store = session?.Store;
        using var planner = new LineagePlanner(store, CodecOptions, logger, MaxDepth);
        var decisions = new List<BaseDecision>();
        var stored = new List<(ModelId, ModelId?)>();
        var failures = new List<CompressFailure>();
        var planned = new Dictionary<ModelId, ModelId?>(); // the base each model planned takes
        bool IsKnown(ModelId id) => planned.ContainsKey(id) || (store?.Contains(id) ?? false);
        (int, ModelId?)? Known(ModelId id) => planner.DepthOfCandidate(id) is not { } depth ? null
            : (depth, planned.TryGetValue(id, out ModelId? planBase) ? planBase : store!.ReadManifest(id).BaseId);

        family.Walk(IsKnown, modelId =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (store?.Contains(modelId) == true)
            {
                stored.Add((modelId, store.ReadManifest(modelId).BaseId));
                return;
            }
            try
            {
                ModelSketch sketch = ModelSketches.FromFolder(modelId, config.ResolveModel(modelId, family.Models.RevisionOf(modelId)).Folder, cancellationToken);
                BaseHint? hint = family.HintFor(modelId);
                BaseDecision decision = Bases == BasesMode.Strict
                    ? Strict(planner, modelId, sketch, hint, Known)
                    : planner.Choose(modelId, sketch, hint);
                decisions.Add(decision);
                planner.Add(modelId, sketch, decision.Depth);
                planned[modelId] = decision.Base;
            }
            catch (Exception ex) when (CompressJob.FailureKind(ex) is { } kind && !cancellationToken.IsCancellationRequested)
            {
                logger.LogError("{Model}: cannot be sketched: {Reason}", modelId, ex.Message);
                failures.Add(new CompressFailure(modelId, ex.Message, kind));
            }
        });
        return new BasesReport(decisions, stored, failures);
    }

    /// <summary>The store, or null when there is none yet (every candidate is then a model listed before).</summary>
    private StoreSession? OpenIfAny()
    {
        try
        {
            return StoreSession.Open(config, new StoreSessionOptions { Codec = CodecOptions, Logger = logger });
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// With <see cref="BasesMode.Strict"/>: the listed base, or its nearest ancestor within <see cref="MaxDepth"/>, as
    /// compress takes it (<see cref="LineagePlanner.StrictBase"/>), scored all the same so the estimates show what it costs.
    /// </summary>
    private BaseDecision Strict(LineagePlanner planner, ModelId modelId, ModelSketch sketch, BaseHint? hint, Func<ModelId, (int, ModelId?)?> known)
    {
        BaseDecision scored = planner.Choose(modelId, sketch, hint);
        if (hint is null)
        {
            return scored with { Base = null, Depth = 0, Reason = "base_ft.json lists no base for it (--bases strict)" };
        }
        if (LineagePlanner.StrictBase(hint.Base, known, MaxDepth) is not { } chosen)
        {
            return scored with { Base = null, Depth = 0, Reason = $"base_ft.json names {hint.Base}, which is neither stored nor listed before it" };
        }
        string reason = chosen == hint.Base ? "base_ft.json names it (--bases strict)"
            : $"base_ft.json names {hint.Base}, whose chain is already {MaxDepth} long (--max-depth); its ancestor {chosen} instead";
        return scored with { Base = chosen, Depth = planner.DepthOfCandidate(chosen)!.Value + 1, Reason = reason };
    }
}
