using System.Buffers.Binary;

namespace ZipLlm.Codecs;

/// <summary>
/// Format facts of an encoded tensor, in one place. Layout, all integers little-endian:
/// <code>
/// versions 3, 4 and 5:
/// header:  "ZLTN" | u8 version | u8 layout | u16 zero | u64 originalLength | u32 chunkSize
/// chunks:  per chunk: u32 rawLength | u64 XxHash3 of the original chunk bytes | u8 transform
///          | per stream: u8 mode, u32 storedLength | the streams' bytes
/// footer:  u64 file offset of each chunk | reference bytes | u8 baseConversion | u8 referenceLength | u8 kind
///          | u32 chunkCount | "ZLTE"
/// versions 1 and 2:
/// header:  "ZLTN" | u8 version | u8 kind | u8 layout | u8 referenceLength | u64 originalLength | u32 chunkSize | reference bytes
/// chunks:  as above without the transform byte
/// footer:  u64 file offset of each chunk | u32 chunkCount | "ZLTE"
/// </code>
/// Version 3 says whether a tensor is a delta, and of which base, at the end: the writer knows only once every chunk is
/// coded, and a tensor coded against a base whose every chunk came out smaller solo is written as a solo tensor, with no
/// base reference, so it never costs a byte more than solo.
/// A chunk's transform (<see cref="ChunkTransform"/>) says what its streams hold; versions 1 and 2 have none: their
/// chunks are <see cref="ChunkTransform.Solo"/> in a solo tensor and <see cref="ChunkTransform.Xor"/> in a delta.
/// Stream modes: 0 raw, 1 one zstd frame, 2 sparse (u32 nonZeroCount | zstd frame of bitmap and non-zero bytes;
/// since version 2), 3 rANS (<see cref="Entropy.ContextRans"/>; since version 3). Version 4 differs from version 3 only
/// in its rANS streams, which interleave 64 lanes where version 3's have 32 (<see cref="RansLanes"/>): the decoder of an
/// order-0 stream, whose table sits in L1, runs twice as many independent chains and is about 30% faster. Version 5
/// differs from version 4 only in one more chunk transform, <see cref="ChunkTransform.ContextXor"/> (3); a version 3 or 4
/// chunk that names it is refused as corrupt.
/// Chunks are independent: each can be read (through the footer's offsets) and decoded alone, on any thread.
/// The lengths of the streams are derived from the chunk length, the layout and the transform, never read from the file.
/// </summary>
internal static class EncodedTensorFormat
{
    /// <summary>Magic at the start of an encoded tensor.</summary>
    public static ReadOnlySpan<byte> HeaderMagic => "ZLTN"u8;

    /// <summary>Magic at the very end of an encoded tensor.</summary>
    public static ReadOnlySpan<byte> FooterMagic => "ZLTE"u8;

    /// <summary>
    /// The format version this code writes (5: the context XOR transform; 4: rANS in 64 lanes; 3: chunk transforms, rANS
    /// streams, base conversions; 2: sparse streams).
    /// </summary>
    public const byte Version = 5;

    /// <summary>The last chunk transform format <paramref name="version"/> defines (none but solo and XOR are named before version 3).</summary>
    public static ChunkTransform LastTransform(byte version) =>
        version >= 5 ? ChunkTransform.ContextXor : version >= 3 ? ChunkTransform.OrderedDifference : ChunkTransform.Xor;

    /// <summary>The lanes of the rANS streams of format <paramref name="version"/>: 64 from version 4, 32 in version 3.</summary>
    public static int RansLanes(byte version) => version >= 4 ? Entropy.ContextRans.DefaultLanes : Entropy.ContextRans.LegacyLanes;

    /// <summary>Oldest format version this build still reads (version 1 had no sparse streams).</summary>
    public const byte MinReadableVersion = 1;

    /// <summary>Longest opaque reference to a base (a delta's base id) the header may carry.</summary>
    public const int MaxReferenceLength = 128;

    /// <summary>Per-stream entry of a chunk header: mode and stored length.</summary>
    public const int StreamEntrySize = 1 + 4;

    /// <summary>Footer bytes after the offsets (and, in version 3, the reference): in version 3 the conversion, reference length and kind, then chunk count and magic.</summary>
    public static int FooterTrailerSize(byte version) => version >= 3 ? 3 + 4 + 4 : 4 + 4;

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
internal enum EncodedTensorKind : byte
{
    /// <summary>The tensor alone ("solo"): byte grouping then entropy coding.</summary>
    Solo = 0,

    /// <summary>The tensor coded against a base of the same length; each chunk says how (<see cref="ChunkTransform"/>).</summary>
    Delta = 1,
}

/// <summary>How a chunk's bytes became its streams. Since version 3; older chunks imply theirs from the tensor's kind.</summary>
internal enum ChunkTransform : byte
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

    /// <summary>
    /// 16-bit floats and F32 (since version 5): the chunk XOR its base's chunk, split by field as <see cref="Xor"/> splits
    /// it, its exponent stream and sign+mantissa stream each rANS-coded in the context of the base word's exponent
    /// (<see cref="Kernels.BaseExponents"/>: 16 buckets, the ordered difference's), or raw; an F32 chunk's two low
    /// mantissa streams are stored as <see cref="Xor"/> stores them. A retrained model's exponent and sign follow the
    /// base's though its low bits do not: order-0 coding of the XOR does not see that, and its differences mostly
    /// escape. A chunk of 16-bit words has an even length.
    /// </summary>
    ContextXor = 3,
}

/// <summary>How a delta's base is turned into the tensor's dtype before the tensor is coded against it. Since version 3.</summary>
internal enum BaseConversion : byte
{
    /// <summary>The base is used as it is (same dtype).</summary>
    None = 0,

    /// <summary>The base is BF16 and the tensor F16: each base word is converted to F16, rounding to nearest even.</summary>
    Bf16ToF16 = 1,

    /// <summary>The base is F16 and the tensor BF16: each base word is converted to BF16, rounding to nearest even.</summary>
    F16ToBf16 = 2,
}

/// <summary>What an encoded tensor's header and footer say of it, with their one reader and writer.</summary>
/// <param name="Version">Format version.</param>
/// <param name="Kind">Solo or delta (version 3: from the footer).</param>
/// <param name="Layout">How elements are grouped into streams.</param>
/// <param name="ReferenceLength">Bytes of base reference (after the header before version 3, before the footer's trailer since).</param>
/// <param name="Length">Byte length of the original tensor.</param>
/// <param name="ChunkSize">Bytes of original tensor per chunk.</param>
/// <param name="Conversion">How a delta's base is converted first (always <see cref="BaseConversion.None"/> before version 3).</param>
internal readonly record struct TensorHeader(byte Version, EncodedTensorKind Kind, ElementLayout Layout, int ReferenceLength, long Length, int ChunkSize,
    BaseConversion Conversion)
{
    private const int VersionAt = 4, LengthAt = 8, ChunkSizeAt = 16;
    // Versions 1 and 2.
    private const int OldKindAt = 5, OldLayoutAt = 6, OldReferenceLengthAt = 7;
    // Version 3: the header keeps the layout; the trailer (counted from its start) the rest.
    private const int LayoutAt = 5, ConversionAt = 0, ReferenceLengthAt = 1, KindAt = 2;

    /// <summary>Bytes of the fixed header in every version.</summary>
    public const int Size = 20;

    /// <summary>Writes the fixed header; returns its length.</summary>
    public int WriteHeader(Span<byte> destination)
    {
        EncodedTensorFormat.HeaderMagic.CopyTo(destination);
        destination[VersionAt] = Version;
        if (Version >= 3)
        {
            destination[LayoutAt] = (byte)Layout;
            destination[6] = destination[7] = 0;
        }
        else
        {
            destination[OldKindAt] = (byte)Kind;
            destination[OldLayoutAt] = (byte)Layout;
            destination[OldReferenceLengthAt] = (byte)ReferenceLength;
        }
        BinaryPrimitives.WriteInt64LittleEndian(destination[LengthAt..], Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[ChunkSizeAt..], (uint)ChunkSize);
        return Size;
    }

    /// <summary>Writes a version 3 footer's trailer (what follows the offsets and the reference); returns its length.</summary>
    public int WriteTrailer(Span<byte> destination, int chunkCount)
    {
        destination[ConversionAt] = (byte)Conversion;
        destination[ReferenceLengthAt] = (byte)ReferenceLength;
        destination[KindAt] = (byte)Kind;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[3..], (uint)chunkCount);
        EncodedTensorFormat.FooterMagic.CopyTo(destination[7..]);
        return EncodedTensorFormat.FooterTrailerSize(Version);
    }

    /// <summary>
    /// Reads the fixed header from <paramref name="header"/> (<see cref="Size"/> bytes) and, in version 3, the kind,
    /// reference length and conversion from the footer's <paramref name="trailer"/>; checks them all.
    /// </summary>
    /// <param name="name">Named in every error message.</param>
    /// <param name="header">The first <see cref="Size"/> bytes of the encoded tensor.</param>
    /// <param name="trailer">The last <see cref="EncodedTensorFormat.FooterTrailerSize"/> bytes, for the version the header gives.</param>
    /// <returns>The header, and the chunk count the trailer gives.</returns>
    /// <exception cref="InvalidDataException">The bytes are not a header this build understands.</exception>
    /// <exception cref="NotSupportedException">The version is outside what this build reads.</exception>
    public static (TensorHeader Header, uint ChunkCount) Read(string name, ReadOnlySpan<byte> header, ReadOnlySpan<byte> trailer)
    {
        byte version = VersionOf(name, header);
        if (trailer.Length != EncodedTensorFormat.FooterTrailerSize(version) || !trailer[^4..].SequenceEqual(EncodedTensorFormat.FooterMagic))
        {
            throw new EndOfStreamException($"{name}: encoded tensor is truncated (no end marker).");
        }
        byte kind, layout, referenceLength, conversion = 0;
        if (version >= 3)
        {
            layout = header[LayoutAt];
            if (header[6] != 0 || header[7] != 0)
            {
                throw new InvalidDataException($"{name}: reserved header bytes are not zero.");
            }
            conversion = trailer[ConversionAt];
            referenceLength = trailer[ReferenceLengthAt];
            kind = trailer[KindAt];
        }
        else
        {
            kind = header[OldKindAt];
            layout = header[OldLayoutAt];
            referenceLength = header[OldReferenceLengthAt];
        }
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
        if (conversion > (byte)BaseConversion.F16ToBf16 || (conversion != 0 && (kind != (byte)EncodedTensorKind.Delta || !((ElementLayout)layout).IsHalfWord())))
        {
            throw new InvalidDataException($"{name}: base conversion {conversion} does not fit this tensor.");
        }
        long length = BinaryPrimitives.ReadInt64LittleEndian(header[LengthAt..]);
        uint chunkSize = BinaryPrimitives.ReadUInt32LittleEndian(header[ChunkSizeAt..]);
        if (length < 0)
        {
            throw new InvalidDataException($"{name}: negative length {length}.");
        }
        if (!EncodedTensorFormat.IsValidChunkSize(chunkSize))
        {
            throw new InvalidDataException($"{name}: chunk size {chunkSize} is out of range.");
        }
        uint chunkCount = BinaryPrimitives.ReadUInt32LittleEndian(trailer[^8..]);
        return (new TensorHeader(version, (EncodedTensorKind)kind, (ElementLayout)layout, referenceLength, length, (int)chunkSize, (BaseConversion)conversion), chunkCount);
    }

    /// <summary>The version a header gives, checked to be one this build reads.</summary>
    /// <exception cref="InvalidDataException">The bytes are not an encoded tensor's header.</exception>
    /// <exception cref="NotSupportedException">The version is outside what this build reads.</exception>
    public static byte VersionOf(string name, ReadOnlySpan<byte> header)
    {
        if (header.Length < Size || !header[..4].SequenceEqual(EncodedTensorFormat.HeaderMagic))
        {
            throw new InvalidDataException($"{name}: not an encoded tensor (bad magic).");
        }
        byte version = header[VersionAt];
        if (version is < EncodedTensorFormat.MinReadableVersion or > EncodedTensorFormat.Version)
        {
            throw new NotSupportedException($"{name}: encoded tensor format version {version} is not supported (this build reads {EncodedTensorFormat.MinReadableVersion} to {EncodedTensorFormat.Version}).");
        }
        return version;
    }

    /// <summary>Where the reference starts in an encoded tensor of <paramref name="encodedLength"/> bytes.</summary>
    public long ReferenceAt(long encodedLength) =>
        Version >= 3 ? encodedLength - EncodedTensorFormat.FooterTrailerSize(Version) - ReferenceLength : Size;

    /// <summary>Where the first chunk starts.</summary>
    public long DataStart => Version >= 3 ? Size : Size + ReferenceLength;

    /// <summary>Bytes of the footer: the offsets, the reference in version 3, and the trailer.</summary>
    public long FooterLength(long chunkCount) =>
        checked(chunkCount * 8 + (Version >= 3 ? ReferenceLength : 0) + EncodedTensorFormat.FooterTrailerSize(Version));
}

/// <summary>The fixed part of a chunk's header: raw length, checksum, and (since version 3) transform.</summary>
internal static class ChunkHeader
{
    private const int RawLengthAt = 0, ChecksumAt = 4, TransformAt = 12;

    /// <summary>Bytes of the fixed part in <paramref name="version"/>.</summary>
    public static int SizeOf(byte version) => version >= 3 ? 13 : 12;

    /// <summary>Writes a chunk header of version 3 or later (the same layout); returns its length.</summary>
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
