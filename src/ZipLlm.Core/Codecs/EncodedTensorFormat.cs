namespace ZipLlm.Codecs;

/// <summary>
/// Format facts of an encoded tensor, in one place. Layout, all integers little-endian:
/// <code>
/// header:  "ZLTN" | u8 version | u8 kind | u8 layout | u8 referenceLength
///          | u64 originalLength | u32 chunkSize | reference bytes
/// chunks:  per chunk: u32 rawLength | u64 XxHash3 of the original chunk bytes
///          | per stream: u8 mode, u32 storedLength | the streams' bytes
///          (mode 0 raw, 1 one zstd frame, 2 sparse: u32 nonZeroCount | zstd frame of bitmap and non-zero bytes)
/// footer:  u64 file offset of each chunk | u32 chunkCount | "ZLTE"
/// </code>
/// Chunks are independent: each can be read (through the footer's offsets) and decoded alone,
/// on any thread. The lengths of the streams are derived from the chunk length and the
/// layout, never read from the file.
/// </summary>
public static class EncodedTensorFormat
{
    /// <summary>Magic at the start of an encoded tensor.</summary>
    public static ReadOnlySpan<byte> HeaderMagic => "ZLTN"u8;

    /// <summary>Magic at the very end of an encoded tensor.</summary>
    public static ReadOnlySpan<byte> FooterMagic => "ZLTE"u8;

    /// <summary>The format version this code writes (2: sparse streams; 1 had none).</summary>
    public const byte Version = 2;

    /// <summary>Oldest format version this build still reads (version 1 had no sparse streams).</summary>
    public const byte MinReadableVersion = 1;

    /// <summary>Fixed part of the header: magic, version, kind, layout, reference length, original length, chunk size.</summary>
    public const int FixedHeaderSize = 4 + 1 + 1 + 1 + 1 + 8 + 4;

    /// <summary>Longest opaque reference to a base (a delta's base id) the header may carry.</summary>
    public const int MaxReferenceLength = 128;

    /// <summary>Fixed part of a chunk header: raw length and checksum.</summary>
    public const int ChunkHeaderSize = 4 + 8;

    /// <summary>Per-stream entry of a chunk header: mode and stored length.</summary>
    public const int StreamEntrySize = 1 + 4;

    /// <summary>Footer bytes besides the offsets: chunk count and magic.</summary>
    public const int FooterTrailerSize = 4 + 4;

    /// <summary>Default bytes of original tensor per chunk: large enough for zstd to find its ratio, small enough to spread one tensor over all cores.</summary>
    public const int DefaultChunkSize = 4 << 20;

    /// <summary>Smallest chunk size accepted (small sizes exist for tests).</summary>
    public const int MinChunkSize = 64;

    /// <summary>Largest chunk size accepted; bounds what a decoder allocates per chunk.</summary>
    public const int MaxChunkSize = 64 << 20;

    /// <summary>Stream stored as it is.</summary>
    public const byte ModeRaw = 0;

    /// <summary>Stream stored as one zstd frame.</summary>
    public const byte ModeZstd = 1;

    /// <summary>
    /// Mostly-zero stream stored as a 4-byte count of its non-zero bytes, then one zstd frame holding the bitmap of
    /// the non-zero bytes followed by those bytes (see <see cref="Kernels.SparseBytes"/>). Since version 2.
    /// </summary>
    public const byte ModeSparseZstd = 2;

    /// <summary>Whether <paramref name="chunkSize"/> is in range and keeps every word inside one chunk.</summary>
    public static bool IsValidChunkSize(long chunkSize) =>
        chunkSize is >= MinChunkSize and <= MaxChunkSize && chunkSize % 4 == 0;

    /// <summary>Number of chunks a tensor of <paramref name="originalLength"/> bytes is cut into.</summary>
    public static long ChunkCount(long originalLength, int chunkSize) => (originalLength + chunkSize - 1) / chunkSize;
}

/// <summary>What an encoded tensor holds.</summary>
public enum EncodedTensorKind : byte
{
    /// <summary>The tensor alone ("solo"): byte grouping then zstd.</summary>
    Solo = 0,

    /// <summary>The XOR of the tensor with a base of the same length (BitX), then byte grouping and zstd.</summary>
    Delta = 1,
}
