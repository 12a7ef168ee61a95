using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Synthetic;

/// <summary>What a model of the synthetic family stands for.</summary>
internal enum SyntheticModelKind
{
    /// <summary>The BF16 Llama-shaped base, in two shards with an index.</summary>
    Base,

    /// <summary>Every weight is the base's plus a small change; same shard layout.</summary>
    FullFinetune,

    /// <summary>A rank-8 update merged into q_proj and v_proj; every other tensor is bit-identical to the base's.</summary>
    LoraFinetune,

    /// <summary>The full finetune's tensors, bit for bit, in a different number of shards and a different order.</summary>
    ReshardedFinetune,

    /// <summary>A finetune whose embed_tokens and lm_head have extra rows (new tokens).</summary>
    VocabExtendedFinetune,

    /// <summary>The base converted to F16.</summary>
    F16Copy,

    /// <summary>A byte-identical copy of the base's files under another id.</summary>
    ReUpload,

    /// <summary>An unrelated small F32 model with odd-length, empty, scalar and BOOL tensors and metadata.</summary>
    Standalone,

    /// <summary>
    /// A finetune trained far from the base: every weight moved by about its own magnitude, so coding it against the
    /// base is no better than storing it alone; the store must then cost no more than solo.
    /// </summary>
    FarFinetune,

    /// <summary>
    /// An unrelated BF16 model of the same layout whose matrices have per-channel scale structure: rows and columns
    /// whose magnitudes differ (log-normally), as in trained attention and MLP weights.
    /// </summary>
    ChannelScaled,

    /// <summary>
    /// A finetune of the full finetune (a chat model trained from an instruct one), every weight moved a little from the
    /// full finetune's: a chain of three, whose last model is closest to the middle one.
    /// </summary>
    ChainFinetune,

    /// <summary>
    /// A model retrained from the base (not in the default family: <c>models setup --synthetic --retrained</c> adds it):
    /// every weight scaled by its row's drift (a few percent) and by 1 plus a noise of 50 to 80% of itself, a few percent
    /// of signs flipped. Its exponent and sign still follow the base's, which neither BitX's XOR nor the difference sees.
    /// </summary>
    RetrainedFinetune,
}

/// <summary>One model of a generated synthetic family.</summary>
/// <param name="Id">Hugging Face style id, <c>org/name</c>.</param>
/// <param name="Kind">What the model stands for.</param>
/// <param name="BaseId">The base it is listed under in <c>base_ft.json</c>, or <see langword="null"/> for the base and the standalone model.</param>
/// <param name="Folder">Absolute path of its folder (<c>model_dir/org_name</c>).</param>
/// <param name="Bytes">Total size of its files.</param>
/// <param name="Generated"><see langword="true"/> when this run wrote it; <see langword="false"/> when the folder was already complete.</param>
internal sealed record SyntheticModel(ModelId Id, SyntheticModelKind Kind, ModelId? BaseId, string Folder, long Bytes, bool Generated);

/// <summary>The result of <see cref="SyntheticFamily.Generate"/>: the models and their roles.</summary>
internal sealed class SyntheticFamilyResult
{
    internal SyntheticFamilyResult(IReadOnlyList<SyntheticModel> models, SyntheticSize size, int seed)
    {
        Models = models;
        Size = size;
        Seed = seed;
        ModelList = new ModelList(models.Select(m => m.Id));
        // Every model that is a base of another, in list order, with its finetunes: chains included.
        BaseFt = new BaseFtMap(
            models.Where(b => models.Any(m => m.BaseId == b.Id))
                .Select(b => new KeyValuePair<ModelId, IReadOnlyList<ModelId>>(
                    b.Id, models.Where(m => m.BaseId == b.Id).Select(m => m.Id).ToArray())));
    }

    /// <summary>Every model, base first (the order of the model list).</summary>
    public IReadOnlyList<SyntheticModel> Models { get; }

    /// <summary>The size preset used.</summary>
    public SyntheticSize Size { get; }

    /// <summary>The seed used.</summary>
    public int Seed { get; }

    /// <summary>The id of the base model.</summary>
    public ModelId BaseId => Models[0].Id;

    /// <summary>The model list (<c>test_models.txt</c> content): base first.</summary>
    public ModelList ModelList { get; }

    /// <summary>The roles: the base mapped to its finetunes; the standalone model is absent.</summary>
    public BaseFtMap BaseFt { get; }

    /// <summary>The model of <paramref name="kind"/>.</summary>
    /// <exception cref="ArgumentException">The family has no such model.</exception>
    public SyntheticModel Get(SyntheticModelKind kind) =>
        Models.FirstOrDefault(m => m.Kind == kind) ?? throw new ArgumentException($"No model of kind {kind}.", nameof(kind));

    /// <summary>
    /// Writes the model list to <paramref name="path"/> (atomically), starting with
    /// <see cref="SyntheticFamily.ListMarker"/> so tools can tell it was generated.
    /// </summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void WriteModelList(string path) =>
        ModelList.Save(path,
        [
            SyntheticFamily.ListMarker,
            $"# Size {Size.Name()}, seed {Seed}. One Hugging Face id (org/name) a line; the first line is the base;",
            "# blank lines and '#' comments are skipped. Written by 'zipllm models setup --synthetic'.",
        ]);

    /// <summary>Writes <c>base_ft.json</c> to <paramref name="path"/> (atomically).</summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void WriteBaseFt(string path) => BaseFt.Save(path);
}
