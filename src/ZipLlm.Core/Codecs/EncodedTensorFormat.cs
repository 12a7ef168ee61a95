using System.Buffers.Binary;

namespace ZipLlm.Codecs;

/// <summary>
/// Format facts of an encoded tensor, in one place. Layout, all integers little-endian:
/// <code>
/// header:  "ZLTN" | u8 version | u8 kind | u8 layout | u8 referenceLength
///          | u64 originalLength | u32 chunkSize | u8 baseConversion (version 3) | reference bytes
/// chunks:  per chunk: u32 rawLength | u64 XxHash3 of the original chunk bytes | u8 transform (version 3)
///          | per stream: u8 mode, u32 storedLength | the streams' bytes
/// footer:  u64 file offset of each chunk | u32 chunkCount | "ZLTE"
/// </code>
/// A chunk's transform (<see cref="ChunkTransform"/>) says what its streams hold; versions 1 and 2 have none: their
/// chunks are <see cref="ChunkTransform.Solo"/> in a solo tensor and <see cref="ChunkTransform.Xor"/> in a delta.
/// Stream modes: 0 raw, 1 one zstd frame, 2 sparse (u32 nonZeroCount | zstd frame of bitmap and non-zero bytes;
/// since version 2), 3 rANS (<see cref="Entropy.ContextRans"/>; since version 3).
/// Chunks are independent: each can be read (through the footer's offsets) and decoded alone, on any thread.
/// The lengths of the streams are derived from the chunk length, the layout and the transform, never read from the file.
/// </summary>
public static class EncodedTensorFormat
{
    /// <summary>Magic at the start of an encoded tensor.</summary>
    public static ReadOnlySpan<byte> HeaderMagic => "ZLTN"u8;

    /// <summary>Magic at the very end of an encoded tensor.</summary>
    public static ReadOnlySpan<byte> FooterMagic => "ZLTE"u8;

    /// <summary>The format version this code writes (3: chunk transforms, rANS streams, base conversions; 2: sparse streams).</summary>
    public const byte Version = 3;

    /// <summary>Oldest format version this build still reads (version 1 had no sparse streams).</summary>
    public const byte MinReadableVersion = 1;

    /// <summary>Longest opaque reference to a base (a delta's base id) the header may carry.</summary>
    public const int MaxReferenceLength = 128;

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

    /// <summary>Stream of byte symbols coded by <see cref="Entropy.ContextRans"/>, in the contexts its transform defines. Since version 3.</summary>
    public const byte ModeRans = 3;

    /// <summary>Whether <paramref name="chunkSize"/> is in range and keeps every word inside one chunk.</summary>
    public static bool IsValidChunkSize(long chunkSize) =>
        chunkSize is >= MinChunkSize and <= MaxChunkSize && chunkSize % 4 == 0;

    /// <summary>Number of chunks a tensor of <paramref name="originalLength"/> bytes is cut into.</summary>
    public static long ChunkCount(long originalLength, int chunkSize) => (originalLength + chunkSize - 1) / chunkSize;
}

/// <summary>What an encoded tensor holds.</summary>
public enum EncodedTensorKind : byte
{
    /// <summary>The tensor alone ("solo"): byte grouping then entropy coding.</summary>
    Solo = 0,

    /// <summary>The tensor coded against a base of the same length; each chunk says how (<see cref="ChunkTransform"/>).</summary>
    Delta = 1,
}

/// <summary>How a chunk's bytes became its streams. Since version 3; older chunks imply theirs from the tensor's kind.</summary>
public enum ChunkTransform : byte
{
    /// <summary>The chunk alone, its words split by field (a delta's chunk may be stored so, when that is smaller).</summary>
    Solo = 0,

    /// <summary>BitX: the chunk XOR its base's chunk, then split by field, as the original tool does.</summary>
    Xor = 1,

    /// <summary>
    /// 16-bit words only: the difference of the words' order-preserving integers (sign-magnitude mapped to a monotone
    /// integer), zigzagged; differences below 255 are rANS-coded in the context of the base word's exponent, larger ones
    /// escape to a second stream as they are. Stream 0: one symbol a word. Stream 1: a u16 per escaped word, then the
    /// chunk's trailing odd byte XOR the base's.
    /// </summary>
    OrderedDifference = 2,
}

/// <summary>How a delta's base is turned into the tensor's dtype before the tensor is coded against it. Since version 3.</summary>
public enum BaseConversion : byte
{
    /// <summary>The base is used as it is (same dtype).</summary>
    None = 0,

    /// <summary>The base is BF16 and the tensor F16: each base word is converted to F16, rounding to nearest even.</summary>
    Bf16ToF16 = 1,

    /// <summary>The base is F16 and the tensor BF16: each base word is converted to BF16, rounding to nearest even.</summary>
    F16ToBf16 = 2,
}

/// <summary>The fixed part of an encoded tensor's header, with its one reader and writer.</summary>
/// <param name="Version">Format version.</param>
/// <param name="Kind">Solo or delta.</param>
/// <param name="Layout">How elements are grouped into streams.</param>
/// <param name="ReferenceLength">Bytes of base reference that follow the fixed part.</param>
/// <param name="Length">Byte length of the original tensor.</param>
/// <param name="ChunkSize">Bytes of original tensor per chunk.</param>
/// <param name="Conversion">How a delta's base is converted first (always <see cref="BaseConversion.None"/> before version 3).</param>
public readonly record struct TensorHeader(byte Version, EncodedTensorKind Kind, ElementLayout Layout, int ReferenceLength, long Length, int ChunkSize,
    BaseConversion Conversion)
{
    private const int VersionAt = 4, KindAt = 5, LayoutAt = 6, ReferenceLengthAt = 7, LengthAt = 8, ChunkSizeAt = 16, ConversionAt = 20;

    /// <summary>Largest fixed part of any version.</summary>
    public const int MaxSize = 21;

    /// <summary>Smallest fixed part of any version.</summary>
    public const int MinSize = 20;

    /// <summary>Bytes of the fixed part in <paramref name="version"/>.</summary>
    public static int SizeOf(byte version) => version >= 3 ? 21 : 20;

    /// <summary>Bytes of this header's fixed part.</summary>
    public int Size => SizeOf(Version);

    /// <summary>Writes the fixed part; returns its length.</summary>
    public int Write(Span<byte> destination)
    {
        EncodedTensorFormat.HeaderMagic.CopyTo(destination);
        destination[VersionAt] = Version;
        destination[KindAt] = (byte)Kind;
        destination[LayoutAt] = (byte)Layout;
        destination[ReferenceLengthAt] = (byte)ReferenceLength;
        BinaryPrimitives.WriteInt64LittleEndian(destination[LengthAt..], Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[ChunkSizeAt..], (uint)ChunkSize);
        if (Version >= 3)
        {
            destination[ConversionAt] = (byte)Conversion;
        }
        return Size;
    }

    /// <summary>Reads and checks a fixed part from <paramref name="source"/> (at least <see cref="MinSize"/> bytes; <see cref="MaxSize"/> when there are).</summary>
    /// <exception cref="InvalidDataException">The bytes are not a header this build understands.</exception>
    /// <exception cref="NotSupportedException">The version is outside what this build reads.</exception>
    public static TensorHeader Read(string name, ReadOnlySpan<byte> source)
    {
        if (source.Length < MinSize || !source[..4].SequenceEqual(EncodedTensorFormat.HeaderMagic))
        {
            throw new InvalidDataException($"{name}: not an encoded tensor (bad magic).");
        }
        byte version = source[VersionAt];
        if (version is < EncodedTensorFormat.MinReadableVersion or > EncodedTensorFormat.Version)
        {
            throw new NotSupportedException($"{name}: encoded tensor format version {version} is not supported (this build reads {EncodedTensorFormat.MinReadableVersion} to {EncodedTensorFormat.Version}).");
        }
        if (source.Length < SizeOf(version))
        {
            throw new EndOfStreamException($"{name}: encoded tensor is shorter than its header.");
        }
        byte kind = source[KindAt], layout = source[LayoutAt], referenceLength = source[ReferenceLengthAt];
        if (kind > (byte)EncodedTensorKind.Delta)
        {
            throw new InvalidDataException($"{name}: unknown kind {kind}.");
        }
        if (!ElementLayouts.IsDefined(layout, version))
        {
            throw new InvalidDataException($"{name}: unknown layout {layout}.");
        }
        if (referenceLength > EncodedTensorFormat.MaxReferenceLength || (kind == (byte)EncodedTensorKind.Solo && referenceLength != 0))
        {
            throw new InvalidDataException($"{name}: reference length {referenceLength} does not fit a {(EncodedTensorKind)kind} tensor.");
        }
        long length = BinaryPrimitives.ReadInt64LittleEndian(source[LengthAt..]);
        uint chunkSize = BinaryPrimitives.ReadUInt32LittleEndian(source[ChunkSizeAt..]);
        if (length < 0)
        {
            throw new InvalidDataException($"{name}: negative length {length}.");
        }
        if (!EncodedTensorFormat.IsValidChunkSize(chunkSize))
        {
            throw new InvalidDataException($"{name}: chunk size {chunkSize} is out of range.");
        }
        var conversion = BaseConversion.None;
        if (version >= 3)
        {
            conversion = (BaseConversion)source[ConversionAt];
            if (conversion > BaseConversion.F16ToBf16 || (conversion != BaseConversion.None
                && (kind != (byte)EncodedTensorKind.Delta || !((ElementLayout)layout).IsHalfWord())))
            {
                throw new InvalidDataException($"{name}: base conversion {(byte)conversion} does not fit this tensor.");
            }
        }
        return new TensorHeader(version, (EncodedTensorKind)kind, (ElementLayout)layout, referenceLength, length, (int)chunkSize, conversion);
    }
}

/// <summary>The fixed part of a chunk's header: raw length, checksum, and (since version 3) transform.</summary>
internal static class ChunkHeader
{
    private const int RawLengthAt = 0, ChecksumAt = 4, TransformAt = 12;

    /// <summary>Bytes of the fixed part in <paramref name="version"/>.</summary>
    public static int SizeOf(byte version) => version >= 3 ? 13 : 12;

    /// <summary>Writes a version-<see cref="EncodedTensorFormat.Version"/> chunk header; returns its length.</summary>
    public static int Write(Span<byte> destination, int rawLength, ulong checksum, ChunkTransform transform)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination[RawLengthAt..], (uint)rawLength);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[ChecksumAt..], checksum);
        destination[TransformAt] = (byte)transform;
        return SizeOf(EncodedTensorFormat.Version);
    }

    /// <summary>The raw length a chunk header gives.</summary>
    public static uint RawLength(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadUInt32LittleEndian(header[RawLengthAt..]);

    /// <summary>The checksum a chunk header gives.</summary>
    public static ulong Checksum(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadUInt64LittleEndian(header[ChecksumAt..]);

    /// <summary>The transform of a chunk: read in version 3, implied by the tensor's kind before.</summary>
    public static byte Transform(ReadOnlySpan<byte> header, byte version, bool delta) =>
        version >= 3 ? header[TransformAt] : (byte)(delta ? ChunkTransform.Xor : ChunkTransform.Solo);
}
