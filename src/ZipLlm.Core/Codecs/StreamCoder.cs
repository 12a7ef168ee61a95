using System.Buffers.Binary;
using System.IO.Hashing;
using ZipLlm.Codecs.Entropy;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Codecs;

/// <summary>
/// A chunk's body as streams: split by field into the layout's streams and merged back (solo or XOR), or the ordered
/// difference's symbols and escapes; each stream stored its smallest way (raw, zstd, sparse or rANS). This file holds
/// the split and merge; <c>StreamCoder.Modes.cs</c> each stream's mode, <c>StreamCoder.Sparse.cs</c> sparse streams,
/// <c>StreamCoder.Difference.cs</c> the ordered difference. <see cref="TransformChooser"/> decides which transform a
/// chunk takes. Owns a zstd context, a rANS coder and its scratch buffers (returned by <see cref="Dispose"/>), so it is
/// not thread-safe: each <see cref="ChunkCodec"/> has its own.
/// </summary>
internal sealed partial class StreamCoder : IDisposable
{
    private readonly CodecOptions _options;
    private readonly ZstdContext _zstd;
    private readonly ContextRans _rans = new();
    // The lanes of the rANS streams this coder writes, as its format version has them.
    private readonly int _lanes;
    // The split streams of one chunk, held from construction to disposal.
    private readonly ChunkBuffer?[] _streams = new ChunkBuffer?[F32Split.StreamCount];
    // A stream's coded form, before it is copied to the chunk when smallest.
    private readonly ScratchBuffer _coded;
    // A sparse stream's bitmap and non-zero bytes.
    private readonly ScratchBuffer _sparse;
    // The ordered difference's symbols, their contexts, and its escapes.
    private readonly ScratchBuffer _symbols;
    private readonly ScratchBuffer _contexts;
    private readonly ScratchBuffer _escapes;
    private readonly ChunkBufferPool _buffers;
    // The zstd probe's output.
    private byte[] _probe = [];

    /// <summary>Creates a stream coder for chunks of at most <see cref="CodecOptions.ChunkSize"/> bytes, with validated options.</summary>
    public StreamCoder(CodecOptions options, ChunkBufferPool buffers)
    {
        _options = options;
        _buffers = buffers;
        (_coded, _sparse, _symbols, _contexts, _escapes) = (new(buffers), new(buffers), new(buffers), new(buffers), new(buffers));
        _zstd = ZstdContext.Create(_options.Backend ?? ZstdContext.Default);
        _lanes = EncodedTensorFormat.RansLanes(_options.FormatVersion);
        for (int i = 0; i < _streams.Length; i++)
        {
            _streams[i] = buffers.Rent(_options.ChunkSize);
        }
    }

    /// <summary>The pool the coder's buffers come from.</summary>
    public ChunkBufferPool Buffers => _buffers;

    /// <summary>Solo or XOR: the chunk (XOR the base) split into the layout's streams, each stored its smallest way.</summary>
    public int EncodeSplit(ElementLayout layout, ChunkTransform transform, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination)
    {
        int streamCount = layout.StreamCount();
        Span<int> lengths = stackalloc int[streamCount];
        SplitStreams(layout, chunk, baseChunk, lengths);
        int entry = ChunkHeader.Write(destination, chunk.Length, XxHash3.HashToUInt64(chunk), transform);
        int position = entry + streamCount * EncodedTensorFormat.StreamEntrySize;
        for (int s = 0; s < streamCount; s++)
        {
            int level = s == 0 && layout != ElementLayout.Bytes ? _options.ExponentLevel : _options.Level;
            position += WriteStream(Stream(s).AsSpan(0, lengths[s]), level, destination[entry..], destination[position..]);
            entry += EncodedTensorFormat.StreamEntrySize;
        }
        return position;
    }

    /// <summary>
    /// Splits the chunk (XOR the base, when one is given) into the streams and estimates what <see cref="EncodeSplit"/> would
    /// write; -1 when a stream can only be judged by coding it (a mostly-zero one, which may go sparse).
    /// </summary>
    public long EstimateSplit(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk)
    {
        int streamCount = layout.StreamCount();
        Span<int> lengths = stackalloc int[streamCount];
        SplitStreams(layout, chunk, baseChunk, lengths);
        long total = ChunkHeader.SizeOf(EncodedTensorFormat.Version) + streamCount * EncodedTensorFormat.StreamEntrySize;
        for (int s = 0; s < streamCount; s++)
        {
            int level = s == 0 && layout != ElementLayout.Bytes ? _options.ExponentLevel : _options.Level;
            long stream = EstimateStream(Stream(s).AsSpan(0, lengths[s]), level);
            if (stream < 0)
            {
                return -1;
            }
            total += stream;
        }
        return total;
    }

    /// <summary>Decodes a solo or XOR chunk's streams (the encoded chunk past its header) and merges them into <paramref name="destination"/>.</summary>
    public void DecodeSplit(ElementLayout layout, ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int lanes)
    {
        int streamCount = layout.StreamCount();
        int position = streamCount * EncodedTensorFormat.StreamEntrySize;
        if (encoded.Length < position)
        {
            throw new InvalidDataException($"Encoded chunk of {encoded.Length} bytes is shorter than its header.");
        }
        // Where each decoded stream lies: a raw stream is merged straight from the encoded chunk, not copied first.
        Span<int> lengths = stackalloc int[streamCount];
        Span<int> rawAt = stackalloc int[streamCount];
        for (int s = 0; s < streamCount; s++)
        {
            lengths[s] = layout.StreamLength(destination.Length, s);
            ReadOnlySpan<byte> stored = StoredStream(encoded, s, ref position, out byte mode);
            rawAt[s] = ReadStream(mode, stored, Stream(s).AsSpan(0, lengths[s]), s, lanes) ? position - stored.Length : -1;
        }
        if (position != encoded.Length)
        {
            throw new InvalidDataException($"Encoded chunk has {encoded.Length - position} unexpected trailing bytes.");
        }
        MergeStreams(layout, new DecodedStreams(_streams, encoded, lengths, rawAt), baseChunk, destination);
    }

    /// <summary>The stored bytes of stream <paramref name="stream"/>, whose entry is the stream-th of <paramref name="encoded"/>; advances past them.</summary>
    private static ReadOnlySpan<byte> StoredStream(ReadOnlySpan<byte> encoded, int stream, ref int position, out byte mode)
    {
        int entry = stream * EncodedTensorFormat.StreamEntrySize;
        mode = encoded[entry];
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(encoded[(entry + 1)..]);
        if (stored > (uint)(encoded.Length - position))
        {
            throw new InvalidDataException($"Stream {stream} of {stored} bytes runs past the end of the encoded chunk.");
        }
        ReadOnlySpan<byte> bytes = encoded.Slice(position, (int)stored);
        position += (int)stored;
        return bytes;
    }

    /// <summary>Splits the chunk (XOR the base, when one is given) into the layout's streams, in the split stream buffers; <paramref name="lengths"/> gets their lengths.</summary>
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
                    chunk.CopyTo(Stream(0).AsSpan());
                }
                else
                {
                    XorKernel.Xor(chunk, baseChunk, Stream(0).AsSpan(0, chunk.Length));
                }
                return;
            case ElementLayout.Word16 or ElementLayout.Half:
                Bf16Split.Split(chunk[..body], baseBody, Stream(0).AsSpan(0, body / 2), Stream(1).AsSpan(0, body / 2));
                break;
            case ElementLayout.Word32:
                F32Split.Split(chunk[..body], baseBody, Stream(0).AsSpan(0, body / 4), Stream(1).AsSpan(0, body / 4),
                    Stream(2).AsSpan(0, body / 4), Stream(3).AsSpan(0, body / 4));
                break;
        }
        // Bytes that do not fill a word follow the last stream's words as they are (XOR-ed in delta mode).
        int last = lengths.Length - 1;
        Span<byte> tail = Stream(last).AsSpan(body / wordSize, chunk.Length - body);
        if (baseChunk.IsEmpty)
        {
            chunk[body..].CopyTo(tail);
        }
        else
        {
            XorKernel.Xor(chunk[body..], baseChunk[body..], tail);
        }
    }

    /// <summary>Merges decoded streams into the chunk (XOR the base, when one is given): <see cref="SplitStreams"/> undone.</summary>
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
            case ElementLayout.Word16 or ElementLayout.Half:
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

    /// <summary>Split stream <paramref name="stream"/>'s buffer, held from construction to disposal.</summary>
    private ChunkBuffer Stream(int stream) => _streams[stream] ?? throw new ObjectDisposedException(nameof(StreamCoder));

    /// <inheritdoc/>
    public void Dispose()
    {
        _zstd.Dispose();
        for (int i = 0; i < _streams.Length; i++)
        {
            if (_streams[i] is ChunkBuffer buffer)
            {
                _buffers.Return(buffer);
                _streams[i] = null;
            }
        }
        _sparse.Dispose();
        _coded.Dispose();
        _symbols.Dispose();
        _contexts.Dispose();
        _escapes.Dispose();
    }

    /// <summary>The decoded streams of one chunk: each in its split stream buffer, or, when stored raw, in the encoded chunk.</summary>
    private readonly ref struct DecodedStreams(ChunkBuffer?[] scratch, ReadOnlySpan<byte> encoded, ReadOnlySpan<int> lengths, ReadOnlySpan<int> rawAt)
    {
        private readonly ChunkBuffer?[] _scratch = scratch;
        private readonly ReadOnlySpan<byte> _encoded = encoded;
        private readonly ReadOnlySpan<int> _lengths = lengths;
        private readonly ReadOnlySpan<int> _rawAt = rawAt;

        public int Count => _lengths.Length;

        public ReadOnlySpan<byte> this[int stream] => _rawAt[stream] >= 0
            ? _encoded.Slice(_rawAt[stream], _lengths[stream])
            : _scratch[stream]!.AsSpan(0, _lengths[stream]);
    }
}
