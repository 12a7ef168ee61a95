using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace ZipLlm.Codecs;

/// <summary>
/// A validated encoded tensor (see <see cref="EncodedTensorFormat"/>) read positionally: every chunk
/// can be read and decoded alone, from any thread. A delta needs its <see cref="Base"/> set before decoding.
/// </summary>
public sealed class EncodedTensor : IChunkSource
{
    private readonly ReadAt _read;
    private readonly long[] _offsets;
    private readonly string _name;
    private IChunkSource? _base;

    private EncodedTensor(string name, ReadAt read, EncodedTensorKind kind, ElementLayout layout, long length, int chunkSize, byte[] reference, long[] offsets)
    {
        _name = name;
        _read = read;
        Kind = kind;
        Layout = layout;
        Length = length;
        ChunkSize = chunkSize;
        Reference = reference;
        _offsets = offsets;
    }

    /// <summary>Solo or delta.</summary>
    public EncodedTensorKind Kind { get; }

    /// <summary>How the bytes were grouped into streams.</summary>
    public ElementLayout Layout { get; }

    /// <summary>Byte length of the original tensor.</summary>
    public long Length { get; }

    /// <summary>Bytes of original tensor per chunk.</summary>
    public int ChunkSize { get; }

    /// <summary>Number of chunks.</summary>
    public int ChunkCount => _offsets.Length - 1;

    /// <summary>The opaque id of a delta's base, as given to the encoder (empty for a solo tensor).</summary>
    public byte[] Reference { get; }

    /// <summary>The base a delta is decoded against: the same length, chunked the same way when encoded.</summary>
    /// <exception cref="ArgumentException">The base's length differs, or this tensor is not a delta.</exception>
    public IChunkSource? Base
    {
        get => _base;
        set
        {
            if (Kind != EncodedTensorKind.Delta)
            {
                throw new ArgumentException($"{_name}: a solo tensor has no base.");
            }
            if (value is not null && value.Length != Length)
            {
                throw new ArgumentException($"{_name}: base of {value.Length} bytes does not match the tensor's {Length}.");
            }
            if (value is not null && value.ChunkSize > 0 && value.ChunkSize != ChunkSize)
            {
                throw new ArgumentException($"{_name}: base chunk size {value.ChunkSize} differs from the tensor's {ChunkSize}.");
            }
            _base = value;
        }
    }

    /// <summary>Reads and validates the header and chunk index of an encoded tensor of <paramref name="encodedLength"/> bytes.</summary>
    /// <param name="name">Named in every error message (a file or object name).</param>
    /// <param name="read">Positional, thread-safe reader of the encoded bytes.</param>
    /// <param name="encodedLength">Total length of the encoded tensor.</param>
    /// <exception cref="InvalidDataException">The header or the index is malformed.</exception>
    /// <exception cref="EndOfStreamException">The encoded tensor is truncated.</exception>
    public static EncodedTensor Open(string name, ReadAt read, long encodedLength)
    {
        const int minimum = EncodedTensorFormat.FixedHeaderSize + EncodedTensorFormat.FooterTrailerSize;
        if (encodedLength < minimum)
        {
            throw new EndOfStreamException($"{name}: encoded tensor is {encodedLength} bytes, shorter than the {minimum}-byte minimum.");
        }
        Span<byte> header = stackalloc byte[EncodedTensorFormat.FixedHeaderSize];
        read(0, header);
        if (!header[..4].SequenceEqual(EncodedTensorFormat.HeaderMagic))
        {
            Fail(name, "not an encoded tensor (bad magic).");
        }
        if (header[4] is < EncodedTensorFormat.MinReadableVersion or > EncodedTensorFormat.Version)
        {
            throw new NotSupportedException($"{name}: encoded tensor format version {header[4]} is not supported (this build reads {EncodedTensorFormat.MinReadableVersion} to {EncodedTensorFormat.Version}).");
        }
        byte kind = header[5], layout = header[6], referenceLength = header[7];
        if (kind > (byte)EncodedTensorKind.Delta)
        {
            Fail(name, $"unknown kind {kind}.");
        }
        if (!ElementLayouts.IsDefined(layout))
        {
            Fail(name, $"unknown layout {layout}.");
        }
        if (referenceLength > EncodedTensorFormat.MaxReferenceLength || (kind == (byte)EncodedTensorKind.Solo && referenceLength != 0))
        {
            Fail(name, $"reference length {referenceLength} does not fit a {(EncodedTensorKind)kind} tensor.");
        }
        long length = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        uint chunkSize = BinaryPrimitives.ReadUInt32LittleEndian(header[16..]);
        if (length < 0)
        {
            Fail(name, $"negative length {length}.");
        }
        if (!EncodedTensorFormat.IsValidChunkSize(chunkSize))
        {
            Fail(name, $"chunk size {chunkSize} is out of range.");
        }
        long chunkCount = EncodedTensorFormat.ChunkCount(length, (int)chunkSize);
        long dataStart = EncodedTensorFormat.FixedHeaderSize + referenceLength;
        // Every chunk takes at least its fixed header, so a count the file cannot hold is refused before allocating.
        long footerLength = checked(chunkCount * 8 + EncodedTensorFormat.FooterTrailerSize);
        if (chunkCount > encodedLength / EncodedTensorFormat.ChunkHeaderSize || dataStart + footerLength > encodedLength)
        {
            throw new EndOfStreamException($"{name}: encoded tensor of {encodedLength} bytes is too short for {chunkCount} chunks.");
        }

        byte[] reference = new byte[referenceLength];
        read(EncodedTensorFormat.FixedHeaderSize, reference);
        byte[] footer = new byte[footerLength];
        read(encodedLength - footerLength, footer);
        if (!footer.AsSpan(footer.Length - 4).SequenceEqual(EncodedTensorFormat.FooterMagic))
        {
            throw new EndOfStreamException($"{name}: encoded tensor is truncated (no end marker).");
        }
        uint storedCount = BinaryPrimitives.ReadUInt32LittleEndian(footer.AsSpan(footer.Length - 8));
        if (storedCount != chunkCount)
        {
            Fail(name, $"index holds {storedCount} chunks where the length implies {chunkCount}.");
        }
        var offsets = new long[chunkCount + 1];
        for (int i = 0; i < chunkCount; i++)
        {
            offsets[i] = BinaryPrimitives.ReadInt64LittleEndian(footer.AsSpan(i * 8));
        }
        long footerStart = encodedLength - footerLength;
        offsets[chunkCount] = footerStart;
        if (offsets[0] != dataStart)
        {
            Fail(name, $"first chunk starts at {offsets[0]}, not right after the header at {dataStart}.");
        }
        int maxSpan = ChunkCodec.MaxEncodedLength((ElementLayout)layout, (int)chunkSize);
        for (int i = 0; i < chunkCount; i++)
        {
            long span = offsets[i + 1] - offsets[i];
            if (span < EncodedTensorFormat.ChunkHeaderSize || span > maxSpan)
            {
                Fail(name, $"chunk {i} spans {span} bytes in the index, which no chunk can encode to.");
            }
        }
        return new EncodedTensor(name, read, (EncodedTensorKind)kind, (ElementLayout)layout, length, (int)chunkSize, reference, offsets);
    }

    /// <summary>Opens an encoded tensor held in memory.</summary>
    /// <exception cref="InvalidDataException">The header or the index is malformed.</exception>
    /// <exception cref="EndOfStreamException">The encoded tensor is truncated.</exception>
    public static EncodedTensor Open(string name, ReadOnlyMemory<byte> encoded) =>
        Open(name, (offset, destination) =>
        {
            if (offset + destination.Length > encoded.Length)
            {
                throw new EndOfStreamException($"{name}: read past the end of the encoded tensor.");
            }
            encoded.Span.Slice((int)offset, destination.Length).CopyTo(destination);
        }, encoded.Length);

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">The chunk is corrupt, or a delta has no base set.</exception>
    public void ReadChunk(long offset, Span<byte> destination, ChunkCodec codec)
    {
        if (offset % ChunkSize != 0 || offset > Length || destination.Length != (int)Math.Min(ChunkSize, Length - offset))
        {
            throw new ArgumentException($"{_name}: chunk read at {offset} for {destination.Length} bytes does not match the chunking.");
        }
        if (codec.Options.ChunkSize < ChunkSize)
        {
            throw new ArgumentException($"{_name}: codec chunk size {codec.Options.ChunkSize} is below the tensor's {ChunkSize}.");
        }
        int index = (int)(offset / ChunkSize);
        int encodedLength = (int)(_offsets[index + 1] - _offsets[index]);
        byte[] encoded = ChunkBuffers.Pool.Rent(encodedLength);
        byte[]? baseChunk = null;
        try
        {
            _read(_offsets[index], encoded.AsSpan(0, encodedLength));
            Span<byte> baseSpan = default;
            if (Kind == EncodedTensorKind.Delta)
            {
                IChunkSource source = _base ?? throw new InvalidDataException($"{_name}: a delta tensor cannot be decoded without its base.");
                baseChunk = ChunkBuffers.Pool.Rent(destination.Length);
                baseSpan = baseChunk.AsSpan(0, destination.Length);
                source.ReadChunk(offset, baseSpan, codec);
            }
            try
            {
                codec.Decode(Layout, encoded.AsSpan(0, encodedLength), baseSpan, destination);
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"{_name}: chunk {index}: {ex.Message}", ex);
            }
        }
        finally
        {
            ChunkBuffers.Pool.Return(encoded);
            if (baseChunk is not null)
            {
                ChunkBuffers.Pool.Return(baseChunk);
            }
        }
    }

    [DoesNotReturn]
    private static void Fail(string name, string message) => throw new InvalidDataException($"{name}: {message}");
}
