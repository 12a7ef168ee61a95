using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Codecs;

/// <summary>
/// A validated encoded tensor (see <see cref="EncodedTensorFormat"/>) read positionally: every chunk
/// can be read and decoded alone, from any thread. A delta needs its <see cref="Base"/> set before decoding.
/// </summary>
internal sealed class EncodedTensor : IChunkSource
{
    private readonly ReadAt _read;
    private readonly long[] _offsets;
    private readonly string _name;
    private readonly TensorHeader _header;
    private IChunkSource? _base;

    private EncodedTensor(string name, ReadAt read, TensorHeader header, byte[] reference, long[] offsets)
    {
        _name = name;
        _read = read;
        _header = header;
        Reference = reference;
        _offsets = offsets;
    }

    /// <summary>Format version the tensor was written in.</summary>
    public byte Version => _header.Version;

    /// <summary>How a delta's base is converted to the tensor's dtype before decoding.</summary>
    public BaseConversion Conversion => _header.Conversion;

    /// <summary>Solo or delta.</summary>
    public EncodedTensorKind Kind => _header.Kind;

    /// <summary>How the bytes were grouped into streams.</summary>
    public ElementLayout Layout => _header.Layout;

    /// <summary>Byte length of the original tensor.</summary>
    public long Length => _header.Length;

    /// <summary>Bytes of original tensor per chunk.</summary>
    public int ChunkSize => _header.ChunkSize;

    /// <summary>Number of chunks.</summary>
    public int ChunkCount => _offsets.Length - 1;

    /// <summary>The opaque id of a delta's base, as given to the encoder (empty for a solo tensor).</summary>
    public byte[] Reference { get; }

    /// <summary>The base a delta is decoded against: the same length, chunked the same way when encoded.</summary>
    /// <remarks>A solo tensor ignores a base given to it: the encoder stores a tensor solo when no chunk was smaller as a delta.</remarks>
    /// <exception cref="ArgumentException">The base's length or chunking differs from the tensor's.</exception>
    public IChunkSource? Base
    {
        get => _base;
        set
        {
            if (Kind != EncodedTensorKind.Delta)
            {
                // Coded against a base but stored solo (no chunk was smaller as a delta): it reads without one.
                return;
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
        const int minimum = TensorHeader.Size + 8;
        if (encodedLength < minimum)
        {
            throw new EndOfStreamException($"{name}: encoded tensor is {encodedLength} bytes, shorter than the {minimum}-byte minimum.");
        }
        Span<byte> fixedPart = stackalloc byte[TensorHeader.Size];
        read(0, fixedPart);
        int trailerSize = EncodedTensorFormat.FooterTrailerSize(TensorHeader.VersionOf(name, fixedPart));
        if (encodedLength < TensorHeader.Size + trailerSize)
        {
            throw new EndOfStreamException($"{name}: encoded tensor is {encodedLength} bytes, too short for its header and footer.");
        }
        Span<byte> trailer = stackalloc byte[trailerSize];
        read(encodedLength - trailerSize, trailer);
        (TensorHeader header, uint storedCount) = TensorHeader.Read(name, fixedPart, trailer);
        long length = header.Length;
        int chunkSize = header.ChunkSize;
        long chunkCount = EncodedTensorFormat.ChunkCount(length, chunkSize);
        if (storedCount != chunkCount)
        {
            Fail(name, $"index holds {storedCount} chunks where the length implies {chunkCount}.");
        }
        long dataStart = header.DataStart;
        // Every chunk takes at least its fixed header, so a count the file cannot hold is refused before allocating.
        int chunkHeaderSize = ChunkHeader.SizeOf(header.Version);
        if (chunkCount > encodedLength / chunkHeaderSize || dataStart + header.FooterLength(chunkCount) > encodedLength)
        {
            throw new EndOfStreamException($"{name}: encoded tensor of {encodedLength} bytes is too short for {chunkCount} chunks.");
        }
        long footerLength = header.FooterLength(chunkCount);

        byte[] reference = new byte[header.ReferenceLength];
        read(header.ReferenceAt(encodedLength), reference);
        byte[] footer = new byte[chunkCount * 8];
        read(encodedLength - footerLength, footer);
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
        int maxSpan = ChunkCodec.MaxEncodedLength(header.Layout, chunkSize);
        for (int i = 0; i < chunkCount; i++)
        {
            long span = offsets[i + 1] - offsets[i];
            if (span < chunkHeaderSize || span > maxSpan)
            {
                Fail(name, $"chunk {i} spans {span} bytes in the index, which no chunk can encode to.");
            }
        }
        return new EncodedTensor(name, read, header, reference, offsets);
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
        ChunkBuffer encoded = codec.Buffers.Rent(encodedLength);
        ChunkBuffer? baseChunk = null;
        try
        {
            _read(_offsets[index], encoded.AsSpan(0, encodedLength));
            Span<byte> baseSpan = default;
            bool delta = Kind == EncodedTensorKind.Delta;
            // A delta's chunk stored solo (where coding it against the base did not pay) needs no base read.
            if (delta && ChunkCodec.NeedsBase(Version, encoded.AsSpan(0, encodedLength)))
            {
                IChunkSource source = _base ?? throw new InvalidDataException($"{_name}: a delta tensor cannot be decoded without its base.");
                baseChunk = codec.Buffers.Rent(destination.Length);
                baseSpan = baseChunk.AsSpan(0, destination.Length);
                source.ReadChunk(offset, baseSpan, codec);
                HalfConversion.ConvertInPlace(baseSpan, Conversion);
            }
            try
            {
                codec.Decode(Layout, Version, delta, encoded.AsSpan(0, encodedLength), baseSpan, destination);
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"{_name}: chunk {index}: {ex.Message}", ex);
            }
        }
        finally
        {
            codec.Buffers.Return(encoded);
            if (baseChunk is not null)
            {
                codec.Buffers.Return(baseChunk);
            }
        }
    }

    [DoesNotReturn]
    private static void Fail(string name, string message) => throw new InvalidDataException($"{name}: {message}");
}
