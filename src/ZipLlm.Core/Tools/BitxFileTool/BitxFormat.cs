namespace ZipLlm.Tools.BitxFileTool;

/// <summary>
/// Format facts of the standalone BitX files, in one place. Each of the two files (exponent stream,
/// sign+mantissa stream) is a plain sequence of zstd frames, so <c>zstd -d</c> decodes it to the raw stream:
/// <list type="number">
/// <item>a skippable frame holding the <see cref="HeaderPayloadSize"/>-byte BitX header;</item>
/// <item>one standard zstd frame per chunk of the delta image, with its content size set;</item>
/// <item>a skippable frame holding the <see cref="TrailerPayloadSize"/>-byte trailer (chunk count and digest).</item>
/// </list>
/// Skippable frames decode to nothing, so the stream a zstd decoder yields is exactly the concatenation
/// of the chunk frames.
/// </summary>
internal static class BitxFormat
{
    /// <summary>Bytes of delta image per chunk (one zstd frame per stream per chunk) unless told otherwise.</summary>
    public const int DefaultChunkSize = 4 << 20;

    /// <summary>Smallest chunk size accepted (even, so every chunk but the last holds whole words).</summary>
    public const int MinChunkSize = 16;

    /// <summary>Largest chunk size accepted; it bounds the memory a decoder needs per worker.</summary>
    public const int MaxChunkSize = 64 << 20;

    /// <summary>Magic number of a standard zstd frame (little-endian).</summary>
    public const uint ZstdFrameMagic = 0xFD2FB528;

    /// <summary>The skippable-frame magic the BitX header and trailer use (zstd reserves 0x184D2A50..0x184D2A5F).</summary>
    public const uint SkippableFrameMagic = 0x184D2A5B;

    /// <summary>A skippable frame starts with its magic and its payload length, both 32-bit little-endian.</summary>
    public const int SkippableFrameHeaderSize = 8;

    /// <summary>Largest standard zstd frame header (magic, descriptor, window, dictionary id, content size).</summary>
    public const int MaxZstdFrameHeaderSize = 18;

    /// <summary>The header payload starts with these bytes.</summary>
    public static ReadOnlySpan<byte> HeaderMagic => "ZLBX"u8;

    /// <summary>The trailer payload starts with these bytes.</summary>
    public static ReadOnlySpan<byte> TrailerMagic => "ZLBE"u8;

    /// <summary>The version this build writes and reads.</summary>
    public const byte Version = 1;

    /// <summary>
    /// Header payload: magic (4), version (1), stream (1), mode (1), reserved 0 (1), image length (8),
    /// chunk size (4), reserved 0 (4), base file length (8).
    /// </summary>
    public const int HeaderPayloadSize = 32;

    /// <summary>Trailer payload: magic (4), reserved 0 (4), chunk count (8), digest of the finetune file (8).</summary>
    public const int TrailerPayloadSize = 24;

    /// <summary>Whether <paramref name="chunkSize"/> is even and within the accepted range.</summary>
    public static bool IsValidChunkSize(long chunkSize) => chunkSize is >= MinChunkSize and <= MaxChunkSize && chunkSize % 2 == 0;

    /// <summary>Number of chunks an image of <paramref name="imageLength"/> bytes is cut into.</summary>
    public static long ChunkCount(long imageLength, int chunkSize) => imageLength == 0 ? 0 : (imageLength - 1) / chunkSize + 1;

    /// <summary>Bytes of the exponent stream for a chunk (or image) of <paramref name="length"/> bytes: one per whole word.</summary>
    public static int ExponentLength(int length) => length / 2;

    /// <summary>Bytes of the sign+mantissa stream for <paramref name="length"/> bytes: one per word, plus a trailing odd byte.</summary>
    public static int SignMantissaLength(int length) => length / 2 + length % 2;
}

/// <summary>Which of the two BitX files a header belongs to.</summary>
internal enum BitxStream : byte
{
    /// <summary>The exponent stream (bits 14..7 of each word).</summary>
    Exponent = 0,

    /// <summary>The sign+mantissa stream (bit 15, then bits 6..0), with a trailing odd byte.</summary>
    SignMantissa = 1,
}

/// <summary>How the finetune was paired with the base to form the delta image.</summary>
internal enum BitxMode : byte
{
    /// <summary>Byte for byte over the common prefix (either input is not a valid safetensors file).</summary>
    Raw = 0,

    /// <summary>Tensor by tensor: each finetune tensor XOR the base tensor of the same name, dtype and shape; the header as is.</summary>
    Tensors = 1,
}
