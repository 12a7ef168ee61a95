namespace ZipLlm.Synthetic;

/// <summary>One weight of a Llama-shaped model and the statistics its values are drawn from.</summary>
/// <param name="Name">The Hugging Face <c>transformers</c> name.</param>
/// <param name="Shape">Row-major dimensions.</param>
/// <param name="Mean">Mean of the values (1.0 for RMSNorm weights, 0 for matrices).</param>
/// <param name="Std">Standard deviation of the values.</param>
/// <param name="DeltaStd">Standard deviation of a full finetune's change to each value.</param>
internal sealed record LlamaTensor(string Name, long[] Shape, float Mean, float Std, float DeltaStd)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));

    public bool IsLoraTarget => Name.EndsWith(".q_proj.weight", StringComparison.Ordinal) || Name.EndsWith(".v_proj.weight", StringComparison.Ordinal);

    public bool IsVocabSized => Name is LlamaArchitecture.EmbedName or LlamaArchitecture.LmHeadName;
}

/// <summary>The dimensions of a synthetic Llama model, per size preset, and its weights in module order.</summary>
internal sealed record LlamaArchitecture(int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, int Vocab, int ExtraVocab)
{
    public const string EmbedName = "model.embed_tokens.weight";
    public const string LmHeadName = "lm_head.weight";

    /// <summary>Typical initialiser scale of Llama checkpoints; trained weights stay close to it.</summary>
    private const float WeightStd = 0.02f;

    /// <summary>Rank of the synthetic LoRA update merged into q_proj and v_proj.</summary>
    public const int LoraRank = 8;

    public static LlamaArchitecture For(SyntheticSize size) => size switch
    {
        // 133 k parameters: 0.27 MB in BF16.
        SyntheticSize.Tiny => new(Hidden: 64, Intermediate: 176, Layers: 2, Heads: 4, KvHeads: 2, Vocab: 320, ExtraVocab: 32),
        // 11 M parameters: 22 MB in BF16.
        SyntheticSize.Small => new(Hidden: 384, Intermediate: 1024, Layers: 3, Heads: 6, KvHeads: 2, Vocab: 8192, ExtraVocab: 256),
        // 133 M parameters: 266 MB in BF16.
        SyntheticSize.Default => new(Hidden: 1024, Intermediate: 2816, Layers: 6, Heads: 16, KvHeads: 4, Vocab: 32000, ExtraVocab: 256),
        _ => throw new ArgumentOutOfRangeException(nameof(size), size, "Unknown synthetic size."),
    };

    public int HeadDim => Hidden / Heads;

    /// <summary>The weights in the order <c>transformers</c> registers the modules (the order shards are filled in).</summary>
    public IReadOnlyList<LlamaTensor> Tensors(int vocab)
    {
        long h = Hidden, i = Intermediate, kv = (long)KvHeads * HeadDim;
        // Finetune deltas: about 1% of a weight's scale, i.e. one to three BF16 units in the last
        // place for a typical value, so most XORs touch only low mantissa bits and values near zero
        // (or near a power of two) change exponent.
        const float matrixDelta = WeightStd * 0.01f;
        const float normDelta = 0.004f;
        var list = new List<LlamaTensor> { new(EmbedName, [vocab, h], 0f, WeightStd, matrixDelta) };
        for (int layer = 0; layer < Layers; layer++)
        {
            string p = $"model.layers.{layer}.";
            list.Add(new(p + "self_attn.q_proj.weight", [h, h], 0f, WeightStd, matrixDelta));
            list.Add(new(p + "self_attn.k_proj.weight", [kv, h], 0f, WeightStd, matrixDelta));
            list.Add(new(p + "self_attn.v_proj.weight", [kv, h], 0f, WeightStd, matrixDelta));
            list.Add(new(p + "self_attn.o_proj.weight", [h, h], 0f, WeightStd * 0.75f, matrixDelta));
            list.Add(new(p + "mlp.gate_proj.weight", [i, h], 0f, WeightStd, matrixDelta));
            list.Add(new(p + "mlp.up_proj.weight", [i, h], 0f, WeightStd, matrixDelta));
            list.Add(new(p + "mlp.down_proj.weight", [h, i], 0f, WeightStd * 0.75f, matrixDelta));
            list.Add(new(p + "input_layernorm.weight", [h], 1.0f, 0.05f, normDelta));
            list.Add(new(p + "post_attention_layernorm.weight", [h], 1.0f, 0.05f, normDelta));
        }
        list.Add(new("model.norm.weight", [h], 1.0f, 0.05f, normDelta));
        list.Add(new(LmHeadName, [vocab, h], 0f, WeightStd, matrixDelta));
        return list;
    }
}
