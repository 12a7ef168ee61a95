using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Codecs;

/// <summary>Settings of the tensor codecs. The defaults are measured, not guessed (see bench/).</summary>
internal sealed record CodecOptions
{
    /// <summary>
    /// zstd level for every stream but the exponent stream. Default 1: on the synthetic family's XOR sign+mantissa
    /// streams level 1 stored 0.6% fewer bytes than level 3 at 4.5x the speed (on other data level 3 was 1% smaller).
    /// The standalone <c>bitx</c> tool keeps the original's level 3.
    /// </summary>
    public int Level { get; init; } = 1;

    /// <summary>
    /// zstd level for the exponent stream of a split float layout. On BF16 exponent streams
    /// level 1 was measured both smaller and faster than level 3.
    /// </summary>
    public int ExponentLevel { get; init; } = 1;

    /// <summary>
    /// Bytes of original tensor per independent chunk. Chunks are the unit of parallelism and
    /// bound memory: each worker holds a few chunk-sized buffers.
    /// </summary>
    public int ChunkSize { get; init; } = EncodedTensorFormat.DefaultChunkSize;

    /// <summary>
    /// Compress a small sample of a large stream first and store the stream raw when the sample
    /// does not shrink: sign+mantissa streams barely compress, and this saves the time.
    /// </summary>
    public bool ProbeIncompressible { get; init; } = true;

    /// <summary>
    /// Code a delta of 16-bit floats as an ordered difference (<see cref="ChunkTransform.OrderedDifference"/>) where that
    /// is smallest, as the store does. False leaves BitX's XOR and solo to choose from: for comparisons and tests.
    /// </summary>
    public bool OrderedDifference { get; init; } = true;

    /// <summary>
    /// Code a delta of floats as a context XOR (<see cref="ChunkTransform.ContextXor"/>) where that is smallest, as the store
    /// does (format version 5; only with <see cref="Rans"/>). False leaves the other transforms to choose from: for comparisons and tests.
    /// </summary>
    public bool ContextXor { get; init; } = true;

    /// <summary>
    /// rANS-code a stream (order 0) where that is smallest. False leaves raw, zstd and sparse to choose from, as format
    /// version 2 did: for comparisons and tests.
    /// </summary>
    public bool Rans { get; init; } = true;

    /// <summary>
    /// Code a poor delta every way (ordered difference, XOR, solo) and keep the smallest, instead of choosing by estimates
    /// and coding only the winner: the exhaustive choice that tests and studies hold the estimates to.
    /// </summary>
    internal bool TrialEveryCoding { get; init; }

    /// <summary>
    /// The format version written: <see cref="EncodedTensorFormat.Version"/>, or for tests that hold this build to reading
    /// what older versions wrote, 4 (no context XOR) or 3 (nor rANS streams of 64 lanes).
    /// </summary>
    internal byte FormatVersion { get; init; } = EncodedTensorFormat.Version;

    /// <summary>Whether the context XOR may be written: asked for, with rANS (its streams are rANS or raw), in the version written.</summary>
    internal bool WritesContextXor => ContextXor && Rans && FormatVersion >= 5;

    /// <summary>
    /// zstd implementation; null for the process default (<see cref="ZstdContext.Default"/>: the system's
    /// libzstd when it loads, else the managed port). Either reads what the other wrote.
    /// </summary>
    public ZstdBackend? Backend { get; init; }

    /// <summary>Default options.</summary>
    public static CodecOptions Default { get; } = new();

    /// <summary>Checks the options are usable.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A level or the chunk size is out of range.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Level, -7, nameof(Level));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Level, 22, nameof(Level));
        ArgumentOutOfRangeException.ThrowIfLessThan(ExponentLevel, -7, nameof(ExponentLevel));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ExponentLevel, 22, nameof(ExponentLevel));
        if (!EncodedTensorFormat.IsValidChunkSize(ChunkSize))
        {
            throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize,
                $"Chunk size must be a multiple of 4 between {EncodedTensorFormat.MinChunkSize} and {EncodedTensorFormat.MaxChunkSize}.");
        }
        if (FormatVersion is < 3 or > EncodedTensorFormat.Version)
        {
            throw new ArgumentOutOfRangeException(nameof(FormatVersion), FormatVersion, $"Only versions 3 to {EncodedTensorFormat.Version} are written.");
        }
    }
}
