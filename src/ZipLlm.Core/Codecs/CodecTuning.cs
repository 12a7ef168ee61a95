namespace ZipLlm.Codecs;

/// <summary>
/// The tuning constants of the chunk codec's choices, in one place: which transform a delta chunk is coded by
/// (<see cref="TransformChooser"/>) and how each stream is stored (<see cref="StreamCoder"/>). None is a format fact: a
/// decoder reads whatever was chosen, so changing one changes the store's size and speed, never what it can read.
/// </summary>
internal static class CodecTuning
{
    /// <summary>
    /// Streams at least this long are judged by a sample before being coded whole (a zstd probe, a rANS estimate of the
    /// sample); shorter ones cost little to code every way.
    /// </summary>
    public const int ProbeThreshold = 256 << 10;

    /// <summary>The sample a probe takes, from the middle of the stream.</summary>
    public const int ProbeSize = 32 << 10;

    /// <summary>A probe that compresses to more than this fraction of its size marks the stream incompressible.</summary>
    public const double ProbeRatio = 0.97;

    /// <summary>
    /// A stream with at least this share of zero bytes is tried sparse. Measured on the synthetic finetune's XOR-ed
    /// exponent stream (95% zeros): sparse stores it in 68% of plain zstd's bytes and decodes it about twice as fast.
    /// </summary>
    public const double SparseZeroShare = 0.90;

    /// <summary>A stream shorter than this is never tried sparse.</summary>
    public const int SparseMinLength = 4096;

    /// <summary>A stream shorter than this is not worth a rANS table.</summary>
    public const int RansMinLength = 1024;

    /// <summary>
    /// rANS is used only where it saves at least this share of the raw stream: a solo sign+mantissa stream would save
    /// 0.4% for a decode pass that keeping it raw does not need (raw streams are merged straight from the object).
    /// </summary>
    public const double RansMaxRatio = 0.97;

    /// <summary>An ordered difference whose escapes alone take this share of the chunk is not coded: solo takes about as much.</summary>
    public const double HopelessEscapes = 0.65;

    /// <summary>
    /// An ordered difference of 16-bit words at most this fraction of the chunk is taken without trying the others:
    /// XOR's and solo's sign+mantissa streams alone take about half the chunk on trained weights.
    /// </summary>
    public const double GoodDifference = 0.40;

    /// <summary>
    /// An XOR delta (of words other than 16-bit floats) at most this fraction of the chunk is taken without coding the
    /// chunk solo as well; a larger one (a far finetune, or bytes that merely share a name) may well be beaten by solo.
    /// </summary>
    public const double GoodXor = 0.5;

    /// <summary>
    /// Chunks at least this long choose among the other codings by estimates, and code only the winner; shorter ones
    /// (whose streams are below the probe threshold, and cost little to code) are coded every way.
    /// </summary>
    public const int EstimateMinLength = 2 * ProbeThreshold;

    /// <summary>Estimates this close to each other (a share of the smaller) are settled by coding both.</summary>
    public const double CloseEstimates = 0.02;
}
