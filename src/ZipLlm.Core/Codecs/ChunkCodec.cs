using System.Buffers.Binary;
using System.IO.Hashing;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Codecs;

/// <summary>
/// BitX, the store's codec: encodes and decodes one chunk of a tensor, solo or as a BitX delta (XOR with the
/// base's chunk, the bits grouped by field into streams, each stream zstd-ed, kept raw or stored sparse).
/// <see cref="TensorCodec"/> runs it over whole tensors; <see cref="DeltaPairing"/> says which base tensor
/// a finetune's tensor is coded against. Holds a zstd context and scratch buffers, so it is not
/// thread-safe: give each worker its own.
/// </summary>
public sealed class ChunkCodec : IDisposable
{
    private const int ProbeThreshold = 256 << 10;
    private const int ProbeSize = 32 << 10;
    // A probe that compresses to more than this fraction of its size marks the stream incompressible.
    private const double ProbeRatio = 0.97;
    // A stream with at least this share of zero bytes is stored sparse. Measured on the synthetic finetune's XOR-ed
    // exponent stream (95% zeros): sparse stores it in 68% of plain zstd's bytes and decodes it about twice as fast.
    private const double SparseZeroShare = 0.90;
    private const int SparseMinLength = 4096;

    private readonly CodecOptions _options;
    private readonly ZstdContext _zstd;
    private readonly byte[][] _streams = new byte[F32Split.StreamCount][];
    private byte[] _probe = [];
    private byte[] _sparse = [];

    /// <summary>Creates a codec for chunks of at most <see cref="CodecOptions.ChunkSize"/> bytes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The options are out of range.</exception>
    public ChunkCodec(CodecOptions? options = null)
    {
        _options = options ?? CodecOptions.Default;
        _options.Validate();
        _zstd = ZstdContext.Create(_options.Backend ?? ZstdContext.Default);
        for (int i = 0; i < _streams.Length; i++)
        {
            _streams[i] = ChunkBuffers.Pool.Rent(_options.ChunkSize);
        }
    }

    /// <summary>The options this codec encodes with.</summary>
    public CodecOptions Options => _options;

    /// <summary>Largest encoded size of a chunk of <paramref name="chunkLength"/> bytes.</summary>
    public static int MaxEncodedLength(ElementLayout layout, int chunkLength)
    {
        int total = EncodedTensorFormat.ChunkHeaderSize;
        for (int s = 0; s < layout.StreamCount(); s++)
        {
            total += EncodedTensorFormat.StreamEntrySize + ZstdContext.CompressBound(layout.StreamLength(chunkLength, s));
        }
        return total;
    }

    /// <summary>
    /// Encodes <paramref name="chunk"/> into <paramref name="destination"/>. When <paramref name="baseChunk"/>
    /// is not empty the chunk is XOR-ed with it first (BitX); it must then be as long as the chunk.
    /// </summary>
    /// <returns>Bytes written.</returns>
    /// <exception cref="ArgumentException">Lengths are inconsistent or the destination is too small.</exception>
    public int Encode(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination)
    {
        if (chunk.Length > _options.ChunkSize)
        {
            throw new ArgumentException($"Chunk of {chunk.Length} bytes exceeds the chunk size {_options.ChunkSize}.", nameof(chunk));
        }
        if (!baseChunk.IsEmpty && baseChunk.Length != chunk.Length)
        {
            throw new ArgumentException("Base chunk must be as long as the chunk.", nameof(baseChunk));
        }
        if (destination.Length < MaxEncodedLength(layout, chunk.Length))
        {
            throw new ArgumentException("Destination is smaller than MaxEncodedLength.", nameof(destination));
        }

        int streamCount = layout.StreamCount();
        Span<int> lengths = stackalloc int[streamCount];
        SplitStreams(layout, chunk, baseChunk, lengths);

        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)chunk.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[4..], XxHash3.HashToUInt64(chunk));
        int entry = EncodedTensorFormat.ChunkHeaderSize;
        int position = entry + streamCount * EncodedTensorFormat.StreamEntrySize;
        for (int s = 0; s < streamCount; s++)
        {
            ReadOnlySpan<byte> stream = _streams[s].AsSpan(0, lengths[s]);
            int level = s == 0 && layout != ElementLayout.Bytes ? _options.ExponentLevel : _options.Level;
            (byte mode, int stored) = CompressStream(stream, level, destination[position..]);
            destination[entry] = mode;
            BinaryPrimitives.WriteUInt32LittleEndian(destination[(entry + 1)..], (uint)stored);
            entry += EncodedTensorFormat.StreamEntrySize;
            position += stored;
        }
        return position;
    }

    /// <summary>
    /// Decodes one encoded chunk into <paramref name="destination"/>, whose length is the chunk's
    /// original length. For a delta chunk <paramref name="baseChunk"/> is the base's bytes at the same place.
    /// </summary>
    /// <exception cref="InvalidDataException">The encoded chunk is corrupt, truncated, or its checksum does not match.</exception>
    public void Decode(ElementLayout layout, ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> baseChunk, Span<byte> destination)
    {
        if (destination.Length > _options.ChunkSize)
        {
            throw new ArgumentException($"Chunk of {destination.Length} bytes exceeds the chunk size {_options.ChunkSize}.", nameof(destination));
        }
        if (!baseChunk.IsEmpty && baseChunk.Length != destination.Length)
        {
            throw new ArgumentException("Base chunk must be as long as the chunk.", nameof(baseChunk));
        }
        int streamCount = layout.StreamCount();
        int position = EncodedTensorFormat.ChunkHeaderSize + streamCount * EncodedTensorFormat.StreamEntrySize;
        if (encoded.Length < position)
        {
            throw new InvalidDataException($"Encoded chunk of {encoded.Length} bytes is shorter than its header.");
        }
        uint rawLength = BinaryPrimitives.ReadUInt32LittleEndian(encoded);
        if (rawLength != (uint)destination.Length)
        {
            throw new InvalidDataException($"Encoded chunk says {rawLength} bytes where {destination.Length} are expected.");
        }
        ulong checksum = BinaryPrimitives.ReadUInt64LittleEndian(encoded[4..]);
        // Where each decoded stream lies: a raw stream is merged straight from the encoded chunk, not copied first.
        Span<int> lengths = stackalloc int[streamCount];
        Span<int> rawAt = stackalloc int[streamCount];
        int entry = EncodedTensorFormat.ChunkHeaderSize;
        for (int s = 0; s < streamCount; s++)
        {
            lengths[s] = layout.StreamLength(destination.Length, s);
            byte mode = encoded[entry];
            uint stored = BinaryPrimitives.ReadUInt32LittleEndian(encoded[(entry + 1)..]);
            entry += EncodedTensorFormat.StreamEntrySize;
            if (stored > (uint)(encoded.Length - position))
            {
                throw new InvalidDataException($"Stream {s} of {stored} bytes runs past the end of the encoded chunk.");
            }
            rawAt[s] = DecompressStream(mode, encoded.Slice(position, (int)stored), _streams[s].AsSpan(0, lengths[s]), s) ? position : -1;
            position += (int)stored;
        }
        if (position != encoded.Length)
        {
            throw new InvalidDataException($"Encoded chunk has {encoded.Length - position} unexpected trailing bytes.");
        }
        MergeStreams(layout, new DecodedStreams(_streams, encoded, lengths, rawAt), baseChunk, destination);
        if (XxHash3.HashToUInt64(destination) != checksum)
        {
            throw new InvalidDataException("Decoded chunk does not match its checksum: the encoded data is corrupt.");
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _zstd.Dispose();
        for (int i = 0; i < _streams.Length; i++)
        {
            if (_streams[i].Length > 0)
            {
                ChunkBuffers.Pool.Return(_streams[i]);
                _streams[i] = [];
            }
        }
        if (_sparse.Length > 0)
        {
            ChunkBuffers.Pool.Return(_sparse);
            _sparse = [];
        }
    }

    private void SplitStreams(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<int> lengths)
    {
        for (int s = 0; s < lengths.Length; s++)
        {
            lengths[s] = layout.StreamLength(chunk.Length, s);
        }
        int wordSize = layout.WordSize();
        int body = chunk.Length - chunk.Length % wordSize;
        ReadOnlySpan<byte> baseBody = baseChunk.IsEmpty ? default : baseChunk[..body];
        switch (layout)
        {
            case ElementLayout.Bytes:
                if (baseChunk.IsEmpty)
                {
                    chunk.CopyTo(_streams[0]);
                }
                else
                {
                    XorKernel.Xor(chunk, baseChunk, _streams[0].AsSpan(0, chunk.Length));
                }
                return;
            case ElementLayout.Word16:
                Bf16Split.Split(chunk[..body], baseBody, _streams[0].AsSpan(0, body / 2), _streams[1].AsSpan(0, body / 2));
                break;
            case ElementLayout.Word32:
                F32Split.Split(chunk[..body], baseBody, _streams[0].AsSpan(0, body / 4), _streams[1].AsSpan(0, body / 4),
                    _streams[2].AsSpan(0, body / 4), _streams[3].AsSpan(0, body / 4));
                break;
        }
        // Bytes that do not fill a word follow the last stream's words as they are (XOR-ed in delta mode).
        int last = lengths.Length - 1;
        Span<byte> tail = _streams[last].AsSpan(body / wordSize, chunk.Length - body);
        if (baseChunk.IsEmpty)
        {
            chunk[body..].CopyTo(tail);
        }
        else
        {
            XorKernel.Xor(chunk[body..], baseChunk[body..], tail);
        }
    }

    private static void MergeStreams(ElementLayout layout, DecodedStreams streams, ReadOnlySpan<byte> baseChunk, Span<byte> destination)
    {
        int wordSize = layout.WordSize();
        int body = destination.Length - destination.Length % wordSize;
        ReadOnlySpan<byte> baseBody = baseChunk.IsEmpty ? default : baseChunk[..body];
        switch (layout)
        {
            case ElementLayout.Bytes:
                if (baseChunk.IsEmpty)
                {
                    streams[0].CopyTo(destination);
                }
                else
                {
                    XorKernel.Xor(streams[0], baseChunk, destination);
                }
                return;
            case ElementLayout.Word16:
                Bf16Split.Merge(streams[0][..(body / 2)], streams[1][..(body / 2)], baseBody, destination[..body]);
                break;
            case ElementLayout.Word32:
                F32Split.Merge(streams[0][..(body / 4)], streams[1][..(body / 4)], streams[2][..(body / 4)], streams[3][..(body / 4)],
                    baseBody, destination[..body]);
                break;
        }
        ReadOnlySpan<byte> tail = streams[streams.Count - 1][(body / wordSize)..];
        if (baseChunk.IsEmpty)
        {
            tail.CopyTo(destination[body..]);
        }
        else
        {
            XorKernel.Xor(tail, baseChunk[body..], destination[body..]);
        }
    }

    private (byte Mode, int Stored) CompressStream(ReadOnlySpan<byte> stream, int level, Span<byte> destination)
    {
        if (stream.IsEmpty)
        {
            return (EncodedTensorFormat.ModeRaw, 0);
        }
        if (stream.Length >= SparseMinLength && stream.Count((byte)0) >= stream.Length * SparseZeroShare)
        {
            int sparse = CompressSparse(stream, level, destination);
            if (sparse < stream.Length)
            {
                return (EncodedTensorFormat.ModeSparseZstd, sparse);
            }
        }
        if (_options.ProbeIncompressible && stream.Length >= ProbeThreshold)
        {
            if (_probe.Length == 0)
            {
                _probe = new byte[ZstdContext.CompressBound(ProbeSize)];
            }
            // Sample the middle: the start of a tensor is often unrepresentative (padding rows, special tokens).
            ReadOnlySpan<byte> sample = stream.Slice((stream.Length - ProbeSize) / 2, ProbeSize);
            if (_zstd.Compress(sample, _probe, level) > ProbeSize * ProbeRatio)
            {
                stream.CopyTo(destination);
                return (EncodedTensorFormat.ModeRaw, stream.Length);
            }
        }
        int written = _zstd.Compress(stream, destination, level);
        if (written >= stream.Length)
        {
            stream.CopyTo(destination);
            return (EncodedTensorFormat.ModeRaw, stream.Length);
        }
        return (EncodedTensorFormat.ModeZstd, written);
    }

    /// <summary>Decompresses a stream into <paramref name="destination"/>, or, for a raw one, only checks its length.</summary>
    /// <returns>True when the stream is raw: its bytes are <paramref name="stored"/> as they are.</returns>
    private bool DecompressStream(byte mode, ReadOnlySpan<byte> stored, Span<byte> destination, int stream)
    {
        switch (mode)
        {
            case EncodedTensorFormat.ModeRaw:
                if (stored.Length != destination.Length)
                {
                    throw new InvalidDataException($"Raw stream {stream} holds {stored.Length} bytes where {destination.Length} are expected.");
                }
                return true;
            case EncodedTensorFormat.ModeZstd:
                try
                {
                    // The destination has exactly the expected size, so a corrupt frame can never make zstd allocate or write more.
                    _zstd.DecompressExact(stored, destination);
                }
                catch (InvalidDataException ex)
                {
                    throw new InvalidDataException($"Stream {stream}: {ex.Message}", ex);
                }
                return false;
            case EncodedTensorFormat.ModeSparseZstd:
                try
                {
                    DecompressSparse(stored, destination);
                }
                catch (InvalidDataException ex)
                {
                    throw new InvalidDataException($"Stream {stream}: {ex.Message}", ex);
                }
                return false;
            default:
                throw new InvalidDataException($"Stream {stream} has unknown mode {mode}.");
        }
    }

    /// <summary>Writes [non-zero count][zstd(bitmap, non-zero bytes)]; returns its length.</summary>
    private int CompressSparse(ReadOnlySpan<byte> stream, int level, Span<byte> destination)
    {
        Span<byte> scratch = SparseScratch();
        int bitmapLength = SparseBytes.BitmapLength(stream.Length);
        int count = SparseBytes.Compact(stream, scratch[..bitmapLength], scratch[bitmapLength..]);
        ReadOnlySpan<byte> parts = scratch[..(bitmapLength + count)];
        if (4 + ZstdContext.CompressBound(parts.Length) > destination.Length)
        {
            return int.MaxValue; // cannot happen for a 90%-zero stream; plain zstd then
        }
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)count);
        return 4 + _zstd.Compress(parts, destination[4..], level);
    }

    private void DecompressSparse(ReadOnlySpan<byte> stored, Span<byte> destination)
    {
        if (stored.Length < 4)
        {
            throw new InvalidDataException("sparse stream shorter than its count.");
        }
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(stored);
        if (count > (uint)destination.Length)
        {
            throw new InvalidDataException($"sparse stream claims {count} non-zero bytes in {destination.Length}.");
        }
        Span<byte> scratch = SparseScratch();
        int bitmapLength = SparseBytes.BitmapLength(destination.Length);
        _zstd.DecompressExact(stored[4..], scratch[..(bitmapLength + (int)count)]);
        SparseBytes.Expand(scratch[..bitmapLength], scratch[bitmapLength..], (int)count, destination);
    }

    /// <summary>Room for a chunk's bitmap and all its bytes, plus the kernels' slack.</summary>
    private Span<byte> SparseScratch()
    {
        int size = SparseBytes.BitmapLength(_options.ChunkSize) + _options.ChunkSize + SparseBytes.Slack;
        if (_sparse.Length < size)
        {
            if (_sparse.Length > 0)
            {
                ChunkBuffers.Pool.Return(_sparse);
            }
            _sparse = ChunkBuffers.Pool.Rent(size);
        }
        return _sparse.AsSpan(0, size);
    }

    /// <summary>The decoded streams of one chunk: each in the codec's scratch buffer, or, when stored raw, in the encoded chunk.</summary>
    private readonly ref struct DecodedStreams(byte[][] scratch, ReadOnlySpan<byte> encoded, ReadOnlySpan<int> lengths, ReadOnlySpan<int> rawAt)
    {
        private readonly byte[][] _scratch = scratch;
        private readonly ReadOnlySpan<byte> _encoded = encoded;
        private readonly ReadOnlySpan<int> _lengths = lengths;
        private readonly ReadOnlySpan<int> _rawAt = rawAt;

        public int Count => _lengths.Length;

        public ReadOnlySpan<byte> this[int stream] => _rawAt[stream] >= 0
            ? _encoded.Slice(_rawAt[stream], _lengths[stream])
            : _scratch[stream].AsSpan(0, _lengths[stream]);
    }
}
