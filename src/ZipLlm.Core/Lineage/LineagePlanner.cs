using Microsoft.Extensions.Logging;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Catalog;

namespace ZipLlm.Lineage;

/// <summary>A base a model's listing suggests: base_ft.json, or the model card's <c>base_model</c>.</summary>
/// <param name="Base">The suggested base.</param>
/// <param name="Source">Where the suggestion comes from, as a user would name it (<c>base_ft.json</c>, <c>model card</c>).</param>
internal sealed record BaseHint(ModelId Base, string Source);

/// <summary>What a model is estimated to take stored against one candidate base.</summary>
/// <param name="Candidate">The candidate base.</param>
/// <param name="Depth">Its depth: 0 for a model stored without a base, else one more than its base's.</param>
/// <param name="EstimatedBytes">The model's tensors, estimated from the sample, when coded against the candidate.</param>
/// <param name="Coded">Whether the estimate comes from the codec on the whole sample, or only from the quick estimate.</param>
internal sealed record CandidateEstimate(ModelId Candidate, int Depth, long EstimatedBytes, bool Coded);

/// <summary>The base chosen for a model, and why.</summary>
/// <param name="Model">The model.</param>
/// <param name="Base">The base it is stored against, or null to store it alone.</param>
/// <param name="Depth">The model's depth once stored so: 0 alone, else one more than its base's.</param>
/// <param name="Hint">What base_ft.json or the model card suggested, if anything.</param>
/// <param name="SoloBytes">The model's tensors, estimated from the sample, stored alone.</param>
/// <param name="TensorBytes">Bytes of the model's floating tensors, which the estimates stand for.</param>
/// <param name="Candidates">Every candidate scored, best first.</param>
/// <param name="Reason">One line: why this base (or none).</param>
internal sealed record BaseDecision(ModelId Model, ModelId? Base, int Depth, BaseHint? Hint, long SoloBytes, long TensorBytes,
    IReadOnlyList<CandidateEstimate> Candidates, string Reason)
{
    /// <summary>The estimate for the chosen base, or alone.</summary>
    public long EstimatedBytes => Base is { } chosen ? Candidates.First(c => c.Candidate == chosen).EstimatedBytes : SoloBytes;
}

/// <summary>
/// Chooses each model's base among the models already stored (and those planned before it): the one whose delta
/// against the model is smallest on their sketches (<see cref="ModelSketch"/>, <see cref="SketchScorer"/>), or none
/// when no candidate beats storing it alone. A hint is taken unless another candidate, or storing the model alone, is
/// clearly better. A candidate
/// whose own chain of bases is already <see cref="MaxDepth"/> long cannot be a base (restoring a model decodes every
/// base up its chain), so the model is coded against an ancestor instead. Candidates' quick sketches stay in memory
/// (about 32 KB each); the whole sketch is read from the store again only for the few ranked first.
/// </summary>
internal sealed class LineagePlanner : IDisposable
{
    /// <summary>The longest chain of bases by default: a model may be a finetune of a finetune of a finetune of a base.</summary>
    public const int DefaultMaxDepth = 3;

    /// <summary>The longest chain any store allows (objects chain deltas at most <see cref="ObjectStore.MaxDeltaDepth"/> deep).</summary>
    public const int MaxMaxDepth = 8;

    /// <summary>
    /// Candidates the lineage index proposes, closest first, for the quick estimate to rank (with the hinted base, and
    /// any candidate without a summary): so a model is scored against a handful of stored models, not all of them.
    /// </summary>
    public const int IndexCandidates = 8;

    /// <summary>Candidates scored with the codec after the quick ranking (a hinted base is scored too).</summary>
    public const int CodedCandidates = 3;

    /// <summary>A base must beat storing the model alone by this share of the solo estimate.</summary>
    public const double SoloMargin = 0.02;

    /// <summary>A hinted base is kept unless another candidate, or storing the model alone, is estimated smaller by more than this share of the solo estimate.</summary>
    public const double HintMargin = 0.05;

    private readonly ModelStore? _store;
    private readonly CodecOptions _options;
    private readonly ILogger _logger;
    private readonly SketchScorer _scorer;
    private ModelSketches.StoredSketchReader? _sketches;
    private readonly List<Candidate> _candidates = [];
    private bool _loaded;

    /// <summary>Creates a planner over the models in <paramref name="store"/> (none when null).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxDepth"/> is not between 1 and <see cref="MaxMaxDepth"/>.</exception>
    public LineagePlanner(ModelStore? store, CodecOptions options, ILogger logger, int maxDepth = DefaultMaxDepth)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDepth, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxDepth, MaxMaxDepth);
        _store = store;
        _options = options;
        _logger = logger;
        MaxDepth = maxDepth;
        _scorer = new SketchScorer(options);
    }

    /// <summary>The longest chain of bases a model may end.</summary>
    public int MaxDepth { get; }

    /// <summary>
    /// Ranks every candidate by the quick estimate, as before the lineage index (what the index's recall is measured
    /// against); the default, false, ranks only the <see cref="IndexCandidates"/> the index proposes.
    /// </summary>
    public bool ScoreEveryone { get; init; }

    /// <summary>Candidates known: models stored, and those added since.</summary>
    public int CandidateCount
    {
        get
        {
            LoadStored();
            return _candidates.Count;
        }
    }

    /// <summary>
    /// With <c>--bases strict</c>: <paramref name="listed"/>, the base base_ft.json names, or, when its chain of bases is
    /// already <paramref name="maxDepth"/> long, its nearest ancestor with room; null when the walk meets a model
    /// <paramref name="known"/> does not know (not stored, or removed since). Compress and its dry run both choose by it.
    /// </summary>
    /// <param name="listed">The base base_ft.json names.</param>
    /// <param name="known">A known model's depth and base; null for a model neither stored nor planned.</param>
    /// <param name="maxDepth">The longest chain a model may end.</param>
    public static ModelId? StrictBase(ModelId listed, Func<ModelId, (int Depth, ModelId? Base)?> known, int maxDepth)
    {
        for (ModelId? current = listed; current is { } id;)
        {
            if (known(id) is not { } model)
            {
                return null;
            }
            if (model.Depth < maxDepth)
            {
                return id;
            }
            current = model.Base;
        }
        return null;
    }

    /// <summary>The depth of a stored manifest: the longest chain of bases any of its tensors is decoded through.</summary>
    public static int DepthOf(Manifest manifest) => manifest.Depth();

    /// <summary>
    /// Makes <paramref name="modelId"/> a candidate for the models after it: a model just stored (with its manifest, so
    /// its whole sketch is read back from the store when needed), or one only planned (kept in memory).
    /// </summary>
    public void Add(ModelId modelId, ModelSketch sketch, int depth, Manifest? stored = null)
    {
        ArgumentNullException.ThrowIfNull(sketch);
        LoadStored();
        _candidates.RemoveAll(c => c.Id == modelId);
        bool readBack = stored?.Sketch is not null;
        _candidates.Add(new Candidate(modelId, depth, LineageIndex.Parse(LineageIndex.Summarize(sketch)))
        {
            Quick = sketch.Truncated(SketchScorer.QuickElements),
            Sketch = readBack ? null : sketch,
        });
    }

    /// <summary>The depth of a known candidate, or null when it is not one.</summary>
    public int? DepthOfCandidate(ModelId modelId)
    {
        LoadStored();
        return _candidates.FirstOrDefault(c => c.Id == modelId)?.Depth;
    }

    /// <summary>Chooses the base of <paramref name="modelId"/>, whose sketch is <paramref name="sketch"/>.</summary>
    public BaseDecision Choose(ModelId modelId, ModelSketch sketch, BaseHint? hint)
    {
        ArgumentNullException.ThrowIfNull(sketch);
        LoadStored();
        double scale = sketch.SampleBytes == 0 ? 0 : (double)sketch.TensorBytes / sketch.SampleBytes;
        long Estimate(long sampleBytes) => (long)Math.Round(sampleBytes * scale);
        long solo = Estimate(_scorer.CodedBytes(sketch, null));

        var tooDeep = new List<Candidate>();
        var ranked = new List<(Candidate Candidate, double Bits)>();
        foreach (Candidate candidate in Proposed(modelId, sketch, hint, tooDeep))
        {
            ModelSketch? quick = QuickOf(candidate);
            if (quick is null)
            {
                continue;
            }
            double bits = SketchScorer.QuickBits(sketch, quick, out long paired);
            if (paired > 0)
            {
                ranked.Add((candidate, bits));
            }
        }
        ranked.Sort((a, b) => a.Bits != b.Bits ? a.Bits.CompareTo(b.Bits) : a.Candidate.Depth.CompareTo(b.Candidate.Depth));
        var estimates = new List<CandidateEstimate>();
        var coded = new List<(Candidate Candidate, long Bytes)>();
        // The quick estimate ranks; its bits are put in the codec's terms by the ratio of the two on the first ranked.
        double calibration = 0;
        for (int i = 0; i < ranked.Count; i++)
        {
            Candidate candidate = ranked[i].Candidate;
            if (i < CodedCandidates || candidate.Id == hint?.Base)
            {
                long bytes = Estimate(_scorer.CodedBytes(sketch, Full(candidate)));
                coded.Add((candidate, bytes));
                estimates.Add(new CandidateEstimate(candidate.Id, candidate.Depth, bytes, Coded: true));
                if (i == 0 && ranked[0].Bits > 0)
                {
                    calibration = bytes / ranked[0].Bits;
                }
            }
            else
            {
                estimates.Add(new CandidateEstimate(candidate.Id, candidate.Depth, (long)Math.Round(ranked[i].Bits * calibration), Coded: false));
            }
        }
        estimates.Sort((a, b) => a.EstimatedBytes != b.EstimatedBytes ? a.EstimatedBytes.CompareTo(b.EstimatedBytes) : a.Depth.CompareTo(b.Depth));

        // Best: fewest bytes; within the solo margin of each other, the shallower (cheaper to restore).
        (Candidate Candidate, long Bytes)? best = null;
        foreach ((Candidate candidate, long bytes) in coded)
        {
            if (best is not { } b || bytes < b.Bytes - solo * SoloMargin
                || (bytes <= b.Bytes + solo * SoloMargin && candidate.Depth < b.Candidate.Depth))
            {
                best = (candidate, bytes);
            }
        }
        if (best is { } found && found.Bytes > solo * (1 - SoloMargin))
        {
            best = null;
        }

        ModelId? chosen = best?.Candidate.Id;
        string reason = best is { } pick
            ? $"{pick.Candidate.Id} is the closest: estimated {Percent(pick.Bytes, solo)} of storing it alone"
            : ranked.Count == 0
                ? "no stored model has tensors it pairs with"
                : "no candidate beats storing it alone";
        if (hint is not null)
        {
            Candidate? hinted = _candidates.FirstOrDefault(c => c.Id == hint.Base);
            long? hintBytes = null;
            foreach ((Candidate candidate, long bytes) in coded)
            {
                if (candidate.Id == hint.Base)
                {
                    hintBytes = bytes;
                }
            }
            if (hinted is null)
            {
                reason = $"{hint.Source} names {hint.Base}, which is not stored; " + reason;
            }
            else if (hinted.Depth + 1 > MaxDepth)
            {
                reason = $"{hint.Source} names {hint.Base}, but its chain of bases is already {hinted.Depth} long (limit {MaxDepth}); " + reason;
            }
            else if (hintBytes is { } h && h <= Math.Min(best?.Bytes ?? solo, solo) + solo * HintMargin)
            {
                // Not clearly worse than the best choice, storing it alone included: the user's (or the card's) word stands.
                chosen = hint.Base;
                reason = $"{hint.Source} names it, and it is {(best?.Candidate.Id == hint.Base ? "the closest" : $"within {HintMargin:P0} of the best choice")}: estimated {Percent(h, solo)} of storing it alone";
            }
            else
            {
                reason = hintBytes is { } worse
                    ? $"{hint.Source} names {hint.Base}, estimated {Percent(worse, solo)} of storing it alone; " + reason
                    : $"{hint.Source} names {hint.Base}, which has no tensors it pairs with; " + reason;
            }
        }
        if (chosen is null && tooDeep.Count > 0)
        {
            reason += $"; {tooDeep.Count} candidate(s) left out, their chains of bases already {MaxDepth} long";
        }
        int depth = chosen is { } c ? _candidates.First(x => x.Id == c).Depth + 1 : 0;
        return new BaseDecision(modelId, chosen, depth, hint, solo, sketch.TensorBytes, estimates, reason);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _scorer.Dispose();
        _sketches?.Dispose();
    }

    private static string Percent(long bytes, long solo) => solo <= 0 ? "0%" : $"{100.0 * bytes / solo:F0}%";

    private ModelSketch Full(Candidate candidate)
    {
        if (candidate.Sketch is { } kept)
        {
            return kept;
        }
        _sketches ??= new ModelSketches.StoredSketchReader(_store!, _options);
        Manifest manifest = _store!.ReadManifest(candidate.Id);
        return _sketches.Read(manifest, problem => _logger.LogDebug("{Model}: sketched from its objects for lineage detection: {Problem}", candidate.Id, problem));
    }

    /// <summary>
    /// The candidates worth the quick estimate: every one with <see cref="ScoreEveryone"/>; else the
    /// <see cref="IndexCandidates"/> closest by the lineage index, the hinted base, and those without a summary.
    /// Candidates whose chain is already <see cref="MaxDepth"/> long go to <paramref name="tooDeep"/>.
    /// </summary>
    private List<Candidate> Proposed(ModelId modelId, ModelSketch sketch, BaseHint? hint, List<Candidate> tooDeep)
    {
        LineageIndex? target = ScoreEveryone ? null : LineageIndex.Parse(LineageIndex.Summarize(sketch));
        var proposed = new List<(int Order, Candidate Candidate)>();
        var closest = new PriorityQueue<(int Order, Candidate Candidate), long>(); // the farthest of the closest on top
        for (int i = 0; i < _candidates.Count; i++)
        {
            Candidate candidate = _candidates[i];
            if (candidate.Id == modelId)
            {
                continue;
            }
            if (candidate.Depth + 1 > MaxDepth)
            {
                tooDeep.Add(candidate);
            }
            else if (target is null || candidate.Summary is null || candidate.Id == hint?.Base)
            {
                proposed.Add((i, candidate));
            }
            else
            {
                closest.Enqueue((i, candidate), -target.DistanceTo(candidate.Summary));
                if (closest.Count > IndexCandidates)
                {
                    closest.Dequeue();
                }
            }
        }
        while (closest.TryDequeue(out (int, Candidate) candidate, out _))
        {
            proposed.Add(candidate);
        }
        // In the candidates' own order (stored by id, then as added), as when every one was scored: among candidates
        // the estimates cannot tell apart (a re-sharded copy of a finetune and the finetune), the choice stays the same.
        proposed.Sort((a, b) => a.Order.CompareTo(b.Order));
        return [.. proposed.Select(p => p.Candidate)];
    }

    /// <summary>A candidate's sketch cut for the quick estimate, read from the store the first time; null when it cannot be read.</summary>
    private ModelSketch? QuickOf(Candidate candidate)
    {
        if (candidate.Quick is { } quick)
        {
            return quick;
        }
        try
        {
            ModelSketch sketch = Full(candidate);
            // A sketch made from the objects is kept whole (it costs decoding); a recorded one is read again when needed.
            if (_store!.ReadManifest(candidate.Id).Sketch is null)
            {
                candidate.Sketch = sketch;
            }
            return candidate.Quick = sketch.Truncated(SketchScorer.QuickElements);
        }
        catch (Exception ex) when (ex is StoreDamageException or InvalidDataException or EndOfStreamException or IOException or KeyNotFoundException)
        {
            _logger.LogWarning("{Model} cannot serve as a base: {Reason} (run verify)", candidate.Id, ex.Message);
            return null;
        }
    }

    /// <summary>The stored models, as candidates, from the store's catalog (their sketches are read only when proposed).</summary>
    private void LoadStored()
    {
        if (_loaded)
        {
            return;
        }
        _loaded = true;
        if (_store is null)
        {
            return;
        }
        foreach (CatalogEntry entry in _store.Catalog.Sync().Entries)
        {
            _candidates.Add(new Candidate(entry.Id, entry.Depth, LineageIndex.Parse(entry.Summary)));
        }
    }

    /// <summary>A model that may serve as a base.</summary>
    /// <param name="Id">Its id.</param>
    /// <param name="Depth">Its depth.</param>
    /// <param name="Summary">Its lineage summary, or null when it has none (it is then always scored).</param>
    private sealed record Candidate(ModelId Id, int Depth, LineageIndex? Summary)
    {
        /// <summary>Its sketch cut for the quick estimate, once read.</summary>
        public ModelSketch? Quick { get; set; }

        /// <summary>Its whole sketch when kept in memory (planned, or made from its objects), else null: read from the store.</summary>
        public ModelSketch? Sketch { get; set; }
    }
}
