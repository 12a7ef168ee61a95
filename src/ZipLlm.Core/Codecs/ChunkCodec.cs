using System.IO.Hashing;

namespace ZipLlm.Codecs;

/// <summary>
/// The store's codec for one chunk of a tensor: solo, or coded against the base's chunk at the same place by the
/// transform that stores it smallest (<see cref="ChunkTransform"/>: BitX's XOR, for floats the context XOR, whose streams are
/// rANS-coded in the context of the base's exponents, or for 16-bit floats the ordered difference, coded so too), never larger than the chunk would be stored solo
/// when a delta looks poor. Every stream is then kept raw, zstd-ed, stored sparse or rANS-coded, whichever is smallest.
/// <see cref="TensorCodec"/> runs it over whole tensors; <see cref="DeltaPairing"/> says which base tensor a
/// finetune's tensor is coded against. This class checks the arguments, the chunk header and the checksum;
/// <see cref="TransformChooser"/> picks a delta chunk's transform and <see cref="StreamCoder"/> codes the streams
/// (it holds a zstd context, a rANS coder and scratch buffers), so a codec is not thread-safe: give each worker its own.
/// </summary>
internal sealed class ChunkCodec : IDisposable
{
    private readonly CodecOptions _options;
    private readonly StreamCoder _coder;
    private readonly TransformChooser _chooser;

    /// <summary>The pool this codec, and the sources that decode with it, rent chunk buffers from.</summary>
    public ChunkBufferPool Buffers { get; }

    /// <summary>
    /// Creates a codec for chunks of at most <see cref="CodecOptions.ChunkSize"/> bytes, renting its buffers from
    /// <paramref name="buffers"/> (a pool of its own when null).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The options are out of range.</exception>
    public ChunkCodec(CodecOptions? options = null, ChunkBufferPool? buffers = null)
    {
        _options = options ?? CodecOptions.Default;
        _options.Validate();
        Buffers = buffers ?? new ChunkBufferPool();
        _coder = new StreamCoder(_options, Buffers);
        _chooser = new TransformChooser(_options, _coder);
    }

    /// <summary>The options this codec encodes with.</summary>
    public CodecOptions Options => _options;

    /// <summary>
    /// Largest encoded size of a chunk of <paramref name="chunkLength"/> bytes, in any version: no stream is stored
    /// larger than it is raw, so a chunk takes at most its header and stream entries beside the larger of its split
    /// streams (the chunk's length) and an ordered difference's (a symbol and up to two escape bytes a word).
    /// </summary>
    public static int MaxEncodedLength(ElementLayout layout, int chunkLength)
    {
        int header = ChunkHeader.SizeOf(EncodedTensorFormat.Version);
        int split = header + layout.StreamCount() * EncodedTensorFormat.StreamEntrySize + chunkLength;
        if (!layout.IsHalfWord())
        {
            return split;
        }
        int words = chunkLength / 2;
        return Math.Max(split, header + 2 * EncodedTensorFormat.StreamEntrySize + 3 * words + chunkLength % 2);
    }

    /// <summary>
    /// Encodes <paramref name="chunk"/> into <paramref name="destination"/>: solo when <paramref name="baseChunk"/> is
    /// empty, else against it (it must then be as long as the chunk), by the transform that stores it smallest.
    /// </summary>
    /// <param name="layout">How the chunk's elements are grouped.</param>
    /// <param name="chunk">The chunk's bytes.</param>
    /// <param name="baseChunk">The base's bytes at the same place, or empty for a solo chunk.</param>
    /// <param name="destination">Where the encoded chunk goes; at least <see cref="MaxEncodedLength"/> bytes.</param>
    /// <param name="transform">The transform the chunk was stored with.</param>
    /// <returns>Bytes written.</returns>
    /// <exception cref="ArgumentException">Lengths are inconsistent or the destination is too small.</exception>
    public int Encode(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination, out ChunkTransform transform)
    {
        if (chunk.Length > _options.ChunkSize)
        {
            throw new ArgumentException($"Chunk of {chunk.Length} bytes exceeds the chunk size {_options.ChunkSize}.", nameof(chunk));
        }
        if (!baseChunk.IsEmpty && baseChunk.Length != chunk.Length)
        {
            throw new ArgumentException("Base chunk must be as long as the chunk.", nameof(baseChunk));
        }
        int bound = MaxEncodedLength(layout, chunk.Length);
        if (destination.Length < bound)
        {
            throw new ArgumentException("Destination is smaller than MaxEncodedLength.", nameof(destination));
        }
        return _chooser.Encode(layout, chunk, baseChunk, destination, bound, out transform);
    }

    /// <summary>
    /// Decodes one encoded chunk of format <paramref name="version"/> into <paramref name="destination"/>, whose length is
    /// the chunk's original length. <paramref name="baseChunk"/> is the base's bytes at the same place for a chunk of a
    /// delta tensor (<paramref name="delta"/>); it may be empty when <see cref="NeedsBase"/> says the chunk does not use it.
    /// </summary>
    /// <exception cref="InvalidDataException">The encoded chunk is corrupt, truncated, or its checksum does not match.</exception>
    public void Decode(ElementLayout layout, byte version, bool delta, ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> baseChunk, Span<byte> destination)
    {
        if (destination.Length > _options.ChunkSize)
        {
            throw new ArgumentException($"Chunk of {destination.Length} bytes exceeds the chunk size {_options.ChunkSize}.", nameof(destination));
        }
        if (!baseChunk.IsEmpty && baseChunk.Length != destination.Length)
        {
            throw new ArgumentException("Base chunk must be as long as the chunk.", nameof(baseChunk));
        }
        int header = ChunkHeader.SizeOf(version);
        if (encoded.Length < header)
        {
            throw new InvalidDataException($"Encoded chunk of {encoded.Length} bytes is shorter than its header.");
        }
        uint rawLength = ChunkHeader.RawLength(encoded);
        if (rawLength != (uint)destination.Length)
        {
            throw new InvalidDataException($"Encoded chunk says {rawLength} bytes where {destination.Length} are expected.");
        }
        var transform = (ChunkTransform)ChunkHeader.Transform(encoded, version, delta);
        if (transform > EncodedTensorFormat.LastTransform(version) || (transform != ChunkTransform.Solo && !delta)
            || (transform == ChunkTransform.OrderedDifference && !layout.IsHalfWord())
            || (transform == ChunkTransform.ContextXor && !StreamCoder.FitsContextXor(layout, destination.Length)))
        {
            throw new InvalidDataException($"Chunk transform {(byte)transform} does not fit a {(delta ? "delta" : "solo")} {layout} tensor.");
        }
        if (transform != ChunkTransform.Solo && baseChunk.IsEmpty)
        {
            throw new InvalidDataException("A delta chunk cannot be decoded without its base.");
        }
        if (transform == ChunkTransform.OrderedDifference)
        {
            _coder.DecodeDifference(layout, encoded[header..], baseChunk, destination, EncodedTensorFormat.RansLanes(version));
        }
        else if (transform == ChunkTransform.ContextXor)
        {
            _coder.DecodeContextXor(layout, encoded[header..], baseChunk, destination, EncodedTensorFormat.RansLanes(version));
        }
        else
        {
            _coder.DecodeSplit(layout, encoded[header..], transform == ChunkTransform.Xor ? baseChunk : default, destination, EncodedTensorFormat.RansLanes(version));
        }
        if (XxHash3.HashToUInt64(destination) != ChunkHeader.Checksum(encoded))
        {
            throw new InvalidDataException("Decoded chunk does not match its checksum: the encoded data is corrupt.");
        }
    }

    /// <summary>Whether an encoded chunk of a delta tensor needs its base's bytes to decode (a chunk stored solo does not).</summary>
    public static bool NeedsBase(byte version, ReadOnlySpan<byte> encoded) =>
        encoded.Length < ChunkHeader.SizeOf(version) || ChunkHeader.Transform(encoded, version, delta: true) != (byte)ChunkTransform.Solo;

    /// <inheritdoc/>
    public void Dispose()
    {
        _chooser.Dispose();
        _coder.Dispose();
    }
}
