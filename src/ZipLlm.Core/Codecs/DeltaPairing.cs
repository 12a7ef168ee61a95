using ZipLlm.Safetensors;

namespace ZipLlm.Codecs;

/// <summary>
/// Delta pairing: which base tensor a finetune tensor is coded against. The one rule for the store's ingest
/// and the standalone <c>bitx</c> file tool: a finetune tensor pairs with the base tensor of the same name
/// and dtype, when their shapes are the same, or (where the rule allows it) the same but for the first
/// dimension. Row i of one then lines up with row i of the other: a vocabulary extension adds rows to
/// embed_tokens and lm_head, and the shared rows still differ only in low bits. The store also pairs a
/// 16-bit float tensor with a base of the other 16-bit float dtype (a F16 copy of a BF16 model), the base
/// converted first (<see cref="ConversionFor"/>).
/// </summary>
internal static class DeltaPairing
{
    /// <summary>Which shapes may pair.</summary>
    public enum Rule
    {
        /// <summary>
        /// Only the same shape. The standalone <c>bitx</c> tool keeps this, the original's rule: its decoder
        /// rebuilds the pairing from the two headers, so another rule would XOR other bytes and change the format.
        /// </summary>
        ExactShape,

        /// <summary>
        /// What the store's ingest pairs: the same shape but perhaps for dimension 0 (the base is cut short or extended
        /// with zero bytes to the finetune's length, <see cref="ResizedChunkSource"/>, so the rows both have code to
        /// small values and the added rows are kept as they are), and BF16 with F16 either way, the base converted
        /// first (<see cref="ConversionFor"/>; its encoded tensors record the conversion).
        /// </summary>
        Store,
    }

    /// <summary>How two tensors pair.</summary>
    public enum Fit
    {
        /// <summary>They do not: the finetune tensor is stored on its own.</summary>
        None,

        /// <summary>Same name, dtype and shape.</summary>
        SameShape,

        /// <summary>Same name, dtype and rank, and the same dimensions but for the first.</summary>
        ResizedRows,
    }

    /// <summary>How the finetune tensor (<paramref name="name"/>, <paramref name="dtype"/>, <paramref name="shape"/>) pairs with the base's under <paramref name="rule"/>.</summary>
    /// <returns><see cref="Fit.None"/> when they do not pair.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rule"/> is not a known rule.</exception>
    public static Fit Pair(string name, DType dtype, ReadOnlySpan<long> shape, string baseName, DType baseDType, ReadOnlySpan<long> baseShape, Rule rule)
    {
        if (rule is not (Rule.ExactShape or Rule.Store))
        {
            throw new ArgumentOutOfRangeException(nameof(rule), rule, "Unknown pairing rule.");
        }
        bool dtypesPair = dtype == baseDType || (rule == Rule.Store && ConversionFor(dtype, baseDType) != BaseConversion.None);
        if (!string.Equals(name, baseName, StringComparison.Ordinal) || !dtypesPair || shape.Length != baseShape.Length)
        {
            return Fit.None;
        }
        if (shape.SequenceEqual(baseShape))
        {
            return Fit.SameShape;
        }
        // Differing shapes have rank 1 or more, so dimension 0 exists.
        return rule != Rule.ExactShape && shape[1..].SequenceEqual(baseShape[1..]) ? Fit.ResizedRows : Fit.None;
    }

    /// <summary>How a base of <paramref name="baseDType"/> is converted to code a tensor of <paramref name="dtype"/> against it.</summary>
    /// <returns><see cref="BaseConversion.None"/> for the same dtype, or for dtypes that do not convert.</returns>
    public static BaseConversion ConversionFor(DType dtype, DType baseDType) => (dtype, baseDType) switch
    {
        (DType.F16, DType.BF16) => BaseConversion.Bf16ToF16,
        (DType.BF16, DType.F16) => BaseConversion.F16ToBf16,
        _ => BaseConversion.None,
    };

    /// <summary>How <paramref name="tensor"/> of a finetune pairs with <paramref name="baseTensor"/> under <paramref name="rule"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rule"/> is not a known rule.</exception>
    public static Fit Pair(TensorInfo tensor, TensorInfo baseTensor, Rule rule) =>
        Pair(tensor.Name, tensor.DType, tensor.Shape, baseTensor.Name, baseTensor.DType, baseTensor.Shape, rule);
}
