using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using ZipLlm.Codecs.Entropy;
using ZipLlm.Codecs.Kernels;
using ZipLlm.Codecs.Zstd;

namespace ZipLlm.Codecs;

/// <summary>
/// The store's codec for one chunk of a tensor: solo, or coded against the base's chunk at the same place by the
/// transform that stores it smallest (<see cref="ChunkTransform"/>: BitX's XOR, or for 16-bit floats the ordered
/// difference, rANS-coded in the context of the base's exponents), never larger than the chunk would be stored solo
/// when a delta looks poor. Every stream is then kept raw, zstd-ed, stored sparse or rANS-coded, whichever is smallest.
/// <see cref="TensorCodec"/> runs it over whole tensors; <see cref="DeltaPairing"/> says which base tensor a
/// finetune's tensor is coded against. Holds a zstd context, a rANS coder and scratch buffers, so it is not
/// thread-safe: give each worker its own.
/// </summary>
internal sealed class ChunkCodec : IDisposable
{
    private const int ProbeThreshold = 256 << 10;
    private const int ProbeSize = 32 << 10;
    // A probe that compresses to more than this fraction of its size marks the stream incompressible.
    private const double ProbeRatio = 0.97;
    // A stream with at least this share of zero bytes is tried sparse. Measured on the synthetic finetune's XOR-ed
    // exponent stream (95% zeros): sparse stores it in 68% of plain zstd's bytes and decodes it about twice as fast.
    private const double SparseZeroShare = 0.90;
    private const int SparseMinLength = 4096;
    // A stream shorter than this is not worth a rANS table.
    private const int RansMinLength = 1024;
    // rANS is used only where it saves at least this share of the raw stream: a solo sign+mantissa stream would save
    // 0.4% for a decode pass that keeping it raw does not need (raw streams are merged straight from the object).
    private const double RansMaxRatio = 0.97;
    // An ordered difference whose escapes alone take this share of the chunk is not coded: solo takes about as much.
    private const double HopelessEscapes = 0.65;
    // An ordered difference of 16-bit words at most this fraction of the chunk is taken without trying the others:
    // XOR's and solo's sign+mantissa streams alone take about half the chunk on trained weights.
    private const double GoodDifference = 0.40;
    // Chunks at least this long choose among the other codings by estimates, and code only the winner; shorter ones
    // (whose streams are below the probe threshold, and cost little to code) are coded every way.
    private const int EstimateMinLength = 2 * ProbeThreshold;
    // Estimates this close to each other (a share of the smaller) are settled by coding both.
    private const double CloseEstimates = 0.02;

    private readonly CodecOptions _options;
    private readonly ZstdContext _zstd;
    private readonly ContextRans _rans = new();
    // The lanes of the rANS streams this codec writes, as its format version has them.
    private readonly int _lanes;
    private readonly ChunkBuffer?[] _streams = new ChunkBuffer?[F32Split.StreamCount];
    private byte[] _probe = [];
    private ChunkBuffer? _sparse;
    private ChunkBuffer? _coded;
    private ChunkBuffer? _trial;
    private ChunkBuffer? _symbols;
    private ChunkBuffer? _contexts;
    private ChunkBuffer? _escapes;

    /// <summary>Creates a codec for chunks of at most <see cref="CodecOptions.ChunkSize"/> bytes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The options are out of range.</exception>
    public ChunkCodec(CodecOptions? options = null)
    {
        _options = options ?? CodecOptions.Default;
        _options.Validate();
        _zstd = ZstdContext.Create(_options.Backend ?? ZstdContext.Default);
        _lanes = EncodedTensorFormat.RansLanes(_options.FormatVersion);
        for (int i = 0; i < _streams.Length; i++)
        {
            _streams[i] = ChunkBuffers.Rent(_options.ChunkSize);
        }
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
        if (baseChunk.IsEmpty)
        {
            transform = ChunkTransform.Solo;
            return EncodeSplit(layout, ChunkTransform.Solo, chunk, default, destination);
        }
        if (layout.IsHalfWord() && _options.OrderedDifference)
        {
            return EncodeHalfWordDelta(layout, chunk, baseChunk, destination, bound, out transform);
        }
        int best = EncodeSplit(layout, ChunkTransform.Xor, chunk, baseChunk, destination);
        transform = ChunkTransform.Xor;
        if (best <= chunk.Length / 2)
        {
            return best;
        }
        // A poor delta (a far finetune, or bytes that merely share a name): solo may well be smaller.
        return Better(best, ref transform, EncodeSplit(layout, ChunkTransform.Solo, chunk, default, Trial(bound)), ChunkTransform.Solo, destination);
    }

    /// <summary>
    /// A delta of 16-bit floats: the ordered difference when it is good (the common case, coded once); otherwise the
    /// difference, XOR and solo are compared by estimates from their symbol counts and a zstd probe, and only the winner is
    /// coded, or every candidate within <see cref="CloseEstimates"/> of it. Solo is coded too, and the smaller kept, unless
    /// the coded delta came out at least <see cref="CloseEstimates"/> below solo's estimate, a margin wider than the
    /// estimate's error. The synthetic family's store came out exactly as large as with every coding tried; a test holds the
    /// choice within 1% of trying every coding, and never above solo.
    /// </summary>
    private int EncodeHalfWordDelta(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int bound,
        out ChunkTransform transform)
    {
        long difference = ForwardDifference(layout, chunk, baseChunk, out int escaped);
        if (difference <= chunk.Length * GoodDifference)
        {
            transform = ChunkTransform.OrderedDifference;
            return WriteDifference(chunk, escaped, destination, counted: true);
        }
        long xor = -1, solo = -1;
        if (chunk.Length >= EstimateMinLength && !_options.TrialEveryCoding)
        {
            xor = EstimateSplit(layout, chunk, baseChunk);
            solo = EstimateSplit(layout, chunk, default);
        }
        if (xor < 0 || solo < 0)
        {
            // Small chunks, or streams only a trial can judge (sparse ones): code every candidate.
            int best = difference == long.MaxValue ? int.MaxValue : WriteDifference(chunk, escaped, destination, counted: false);
            transform = ChunkTransform.OrderedDifference;
            best = Better(best, ref transform, EncodeSplit(layout, ChunkTransform.Xor, chunk, baseChunk, Trial(bound)), ChunkTransform.Xor, destination);
            return Better(best, ref transform, EncodeSplit(layout, ChunkTransform.Solo, chunk, default, Trial(bound)), ChunkTransform.Solo, destination);
        }
        long least = Math.Min(difference, Math.Min(xor, solo));
        long close = least + (long)(least * CloseEstimates);
        int written = int.MaxValue;
        transform = ChunkTransform.Solo;
        if (difference <= close)
        {
            written = WriteDifference(chunk, escaped, destination, counted: false);
            transform = ChunkTransform.OrderedDifference;
        }
        if (xor <= close)
        {
            if (written == int.MaxValue)
            {
                written = EncodeSplit(layout, ChunkTransform.Xor, chunk, baseChunk, destination);
                transform = ChunkTransform.Xor;
            }
            else
            {
                written = Better(written, ref transform, EncodeSplit(layout, ChunkTransform.Xor, chunk, baseChunk, Trial(bound)), ChunkTransform.Xor, destination);
            }
        }
        // Solo is coded too when it is close, or when the delta came out above solo's estimate less its margin of error.
        if (written == int.MaxValue)
        {
            transform = ChunkTransform.Solo;
            return EncodeSplit(layout, ChunkTransform.Solo, chunk, default, destination);
        }
        if (solo <= close || written > solo - (long)(solo * CloseEstimates))
        {
            return Better(written, ref transform, EncodeSplit(layout, ChunkTransform.Solo, chunk, default, Trial(bound)), ChunkTransform.Solo, destination);
        }
        return written;
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
        if (transform > ChunkTransform.OrderedDifference || (transform != ChunkTransform.Solo && !delta)
            || (transform == ChunkTransform.OrderedDifference && !layout.IsHalfWord()))
        {
            throw new InvalidDataException($"Chunk transform {(byte)transform} does not fit a {(delta ? "delta" : "solo")} {layout} tensor.");
        }
        if (transform != ChunkTransform.Solo && baseChunk.IsEmpty)
        {
            throw new InvalidDataException("A delta chunk cannot be decoded without its base.");
        }
        if (transform == ChunkTransform.OrderedDifference)
        {
            DecodeDifference(layout, encoded[header..], baseChunk, destination, EncodedTensorFormat.RansLanes(version));
        }
        else
        {
            DecodeSplit(layout, encoded[header..], transform == ChunkTransform.Xor ? baseChunk : default, destination, EncodedTensorFormat.RansLanes(version));
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
        _zstd.Dispose();
        for (int i = 0; i < _streams.Length; i++)
        {
            ReturnBuffer(ref _streams[i]);
        }
        ReturnBuffer(ref _sparse);
        ReturnBuffer(ref _coded);
        ReturnBuffer(ref _trial);
        ReturnBuffer(ref _symbols);
        ReturnBuffer(ref _contexts);
        ReturnBuffer(ref _escapes);
    }

    /// <summary>
    /// Keeps the smaller of the encoding in <paramref name="destination"/> and one in the trial buffer; on a tie, a solo
    /// candidate, which decodes without reading the base.
    /// </summary>
    private int Better(int best, ref ChunkTransform transform, int candidate, ChunkTransform candidateTransform, Span<byte> destination)
    {
        if (candidate > best || (candidate == best && candidateTransform != ChunkTransform.Solo))
        {
            return best;
        }
        _trial!.AsSpan(0, candidate).CopyTo(destination);
        transform = candidateTransform;
        return candidate;
    }

    /// <summary>Solo or XOR: the chunk (XOR the base) split into the layout's streams, each stored its smallest way.</summary>
    private int EncodeSplit(ElementLayout layout, ChunkTransform transform, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination)
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
    /// The ordered difference of 16-bit words into the symbol, context and escape scratch, and the estimate of its coded
    /// size (the rANS coder then holds the symbols' counts); <see cref="long.MaxValue"/> when the escapes alone would take
    /// as much as solo does.
    /// </summary>
    private long ForwardDifference(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, out int escaped)
    {
        int words = chunk.Length / 2, body = 2 * words;
        Span<byte> symbols = Scratch(ref _symbols, words), contexts = Scratch(ref _contexts, words), escapes = Scratch(ref _escapes, chunk.Length + 1);
        escaped = OrderedDifference.Forward(chunk[..body], baseChunk[..body], layout, symbols, contexts, escapes);
        if (escaped > chunk.Length * HopelessEscapes)
        {
            return long.MaxValue; // a far delta: XOR and solo are tried instead
        }
        if (body < chunk.Length)
        {
            escapes[escaped++] = (byte)(chunk[body] ^ baseChunk[body]);
        }
        long symbolBytes = Math.Min(words, _rans.EstimateLength(symbols, contexts, OrderedDifference.ContextCount, _lanes));
        // Escapes are the rare large moves: their bytes barely compress, so they are counted as they are.
        return ChunkHeader.SizeOf(EncodedTensorFormat.Version) + 2 * EncodedTensorFormat.StreamEntrySize + symbolBytes + escaped;
    }

    /// <summary>
    /// Writes the ordered difference <see cref="ForwardDifference"/> left in the scratch: symbols rANS-coded in their base
    /// exponent's context (with the counts the estimate took when <paramref name="counted"/>), escapes apart.
    /// </summary>
    private int WriteDifference(ReadOnlySpan<byte> chunk, int escaped, Span<byte> destination, bool counted)
    {
        int words = chunk.Length / 2;
        int entry = ChunkHeader.Write(destination, chunk.Length, XxHash3.HashToUInt64(chunk), ChunkTransform.OrderedDifference);
        int position = entry + 2 * EncodedTensorFormat.StreamEntrySize;
        position += WriteSymbols(_symbols!.AsSpan(0, words), _contexts!.AsSpan(0, words), OrderedDifference.ContextCount, counted,
            destination[entry..], destination[position..]);
        entry += EncodedTensorFormat.StreamEntrySize;
        position += WriteStream(_escapes!.AsSpan(0, escaped), _options.Level, destination[entry..], destination[position..]);
        return position;
    }

    /// <summary>
    /// Splits the chunk (XOR the base, when one is given) into the streams and estimates what <see cref="EncodeSplit"/> would
    /// write; -1 when a stream can only be judged by coding it (a mostly-zero one, which may go sparse).
    /// </summary>
    private long EstimateSplit(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk)
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

    /// <summary>
    /// What <see cref="WriteStream"/> would store a large stream in, from the rANS estimate and a zstd probe of a sample;
    /// -1 when only coding it can tell (short streams, and mostly-zero ones).
    /// </summary>
    private long EstimateStream(ReadOnlySpan<byte> stream, int level)
    {
        int n = stream.Length;
        if (n < ProbeThreshold || !_options.ProbeIncompressible || (n >= SparseMinLength && stream.Count((byte)0) >= n * SparseZeroShare))
        {
            return -1;
        }
        long best = n;
        long rans = _options.Rans && SampleMayCode(stream) ? _rans.EstimateLength(stream, default, 1, _lanes) : long.MaxValue;
        if (rans <= n * RansMaxRatio)
        {
            best = rans;
        }
        double sampleRatio = ProbeZstd(stream, level);
        if (sampleRatio <= ProbeRatio)
        {
            best = Math.Min(best, (long)(sampleRatio * n));
        }
        return best;
    }

    private void DecodeSplit(ElementLayout layout, ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int lanes)
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

    private void DecodeDifference(ElementLayout layout, ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int lanes)
    {
        int words = destination.Length / 2, body = 2 * words;
        int position = 2 * EncodedTensorFormat.StreamEntrySize;
        if (encoded.Length < position)
        {
            throw new InvalidDataException($"Encoded chunk of {encoded.Length} bytes is shorter than its header.");
        }
        Span<byte> symbols = Scratch(ref _symbols, words);
        ReadOnlySpan<byte> stored = StoredStream(encoded, 0, ref position, out byte mode);
        if (mode == EncodedTensorFormat.ModeRans)
        {
            try
            {
                // The contexts are the base words' exponents, computed by the decoder as it goes.
                _rans.Decode(stored, MemoryMarshal.Cast<byte, ushort>(baseChunk[..body]), OrderedDifference.ContextRule(layout), OrderedDifference.ContextCount, symbols,
                    lanes);
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"Stream 0: {ex.Message}", ex);
            }
        }
        else if (ReadStream(mode, stored, symbols, 0, lanes))
        {
            stored.CopyTo(symbols);
        }
        // The escape stream's length follows from the symbols: two bytes an escape, and the odd byte.
        int escapeLength = 2 * symbols.Count(OrderedDifference.Escape) + destination.Length % 2;
        Span<byte> escapes = Scratch(ref _escapes, escapeLength);
        stored = StoredStream(encoded, 1, ref position, out mode);
        if (ReadStream(mode, stored, escapes, 1, lanes))
        {
            stored.CopyTo(escapes);
        }
        if (position != encoded.Length)
        {
            throw new InvalidDataException($"Encoded chunk has {encoded.Length - position} unexpected trailing bytes.");
        }
        OrderedDifference.Inverse(symbols, escapes, baseChunk[..body], destination[..body]);
        if (body < destination.Length)
        {
            destination[body] = (byte)(escapes[escapeLength - 1] ^ baseChunk[body]);
        }
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

    /// <summary>
    /// Stores <paramref name="stream"/> its smallest way, raw, zstd, sparse or rANS (order 0), at <paramref name="destination"/>,
    /// and writes its mode and stored length to <paramref name="entry"/>; returns the stored length, never above the raw one.
    /// </summary>
    private int WriteStream(ReadOnlySpan<byte> stream, int level, Span<byte> entry, Span<byte> destination)
    {
        int n = stream.Length;
        long rans = n >= RansMinLength && _options.Rans && SampleMayCode(stream) ? _rans.EstimateLength(stream, default, 1, _lanes) : long.MaxValue;
        if (rans > n * RansMaxRatio)
        {
            rans = long.MaxValue;
        }
        (byte Mode, int Length) best = (EncodedTensorFormat.ModeRaw, n);
        Span<byte> coded = Scratch(ref _coded, Math.Max(ZstdContext.CompressBound(n), SparseBytes.BitmapLength(n) + ZstdContext.CompressBound(n) + 8));
        if (n >= SparseMinLength && stream.Count((byte)0) >= n * SparseZeroShare)
        {
            int sparse = CompressSparse(stream, level, coded);
            if (sparse < best.Length && sparse < rans)
            {
                best = (EncodedTensorFormat.ModeSparseZstd, sparse);
                coded[..sparse].CopyTo(destination);
            }
        }
        if (n > 0 && best.Mode == EncodedTensorFormat.ModeRaw && WorthZstd(stream, level, rans))
        {
            int written = _zstd.Compress(stream, coded, level);
            if (written < best.Length && written < rans)
            {
                best = (EncodedTensorFormat.ModeZstd, written);
                coded[..written].CopyTo(destination);
            }
        }
        if (rans < best.Length && rans < n)
        {
            Span<byte> ransCoded = Scratch(ref _coded, ContextRans.MaxEncodedLength(n, 1));
            // The estimate above counted these symbols; sparse and zstd trials do not touch the rANS coder.
            int written = _rans.EncodeEstimated(stream, default, 1, ransCoded, _lanes);
            if (written < best.Length)
            {
                best = (EncodedTensorFormat.ModeRans, written);
                ransCoded[..written].CopyTo(destination);
            }
        }
        if (best.Mode == EncodedTensorFormat.ModeRaw)
        {
            stream.CopyTo(destination);
        }
        entry[0] = best.Mode;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[1..], (uint)best.Length);
        return best.Length;
    }

    /// <summary>Stores symbols rANS-coded in their contexts, or raw when that is not smaller.</summary>
    private int WriteSymbols(ReadOnlySpan<byte> symbols, ReadOnlySpan<byte> contexts, int contextCount, bool counted, Span<byte> entry, Span<byte> destination)
    {
        Span<byte> coded = Scratch(ref _coded, ContextRans.MaxEncodedLength(symbols.Length, contextCount));
        int written = counted ? _rans.EncodeEstimated(symbols, contexts, contextCount, coded, _lanes) : _rans.Encode(symbols, contexts, contextCount, coded, _lanes);
        bool coding = written < symbols.Length;
        byte mode = coding ? EncodedTensorFormat.ModeRans : EncodedTensorFormat.ModeRaw;
        ReadOnlySpan<byte> stored = coding ? coded[..written] : symbols;
        stored.CopyTo(destination);
        entry[0] = mode;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[1..], (uint)stored.Length);
        return stored.Length;
    }

    /// <summary>
    /// Whether a large stream may be worth rANS-coding, judged from a sample of its middle: a solo sign+mantissa stream
    /// (nearly uniform bytes) is then not counted whole for nothing.
    /// </summary>
    private bool SampleMayCode(ReadOnlySpan<byte> stream)
    {
        if (stream.Length < ProbeThreshold)
        {
            return true;
        }
        ReadOnlySpan<byte> sample = stream.Slice((stream.Length - ProbeSize) / 2, ProbeSize);
        // A little slack: the sample's own table weighs more on its estimate than the whole stream's does.
        return _rans.EstimateLength(sample, default, 1, _lanes) <= ProbeSize * (RansMaxRatio + 0.01);
    }

    /// <summary>
    /// Whether zstd is worth running on a stream: small ones always; a large one when a sample of it compresses, and
    /// compresses better than the rANS estimate of the whole (repeats, which order-0 coding cannot see).
    /// </summary>
    private bool WorthZstd(ReadOnlySpan<byte> stream, int level, long ransEstimate)
    {
        if (!_options.ProbeIncompressible || stream.Length < ProbeThreshold)
        {
            return true;
        }
        double sampleRatio = ProbeZstd(stream, level);
        return sampleRatio <= ProbeRatio && sampleRatio < (double)ransEstimate / stream.Length;
    }

    /// <summary>What zstd makes of a sample from the middle of a large stream, as a share of the sample.</summary>
    private double ProbeZstd(ReadOnlySpan<byte> stream, int level)
    {
        if (_probe.Length == 0)
        {
            _probe = new byte[ZstdContext.CompressBound(ProbeSize)];
        }
        // Sample the middle: the start of a tensor is often unrepresentative (padding rows, special tokens).
        ReadOnlySpan<byte> sample = stream.Slice((stream.Length - ProbeSize) / 2, ProbeSize);
        return (double)_zstd.Compress(sample, _probe, level) / ProbeSize;
    }

    /// <summary>Decompresses a stream into <paramref name="destination"/>, or, for a raw one, only checks its length.</summary>
    /// <returns>True when the stream is raw: its bytes are <paramref name="stored"/> as they are.</returns>
    private bool ReadStream(byte mode, ReadOnlySpan<byte> stored, Span<byte> destination, int stream, int lanes)
    {
        if (mode == EncodedTensorFormat.ModeRaw)
        {
            if (stored.Length != destination.Length)
            {
                throw new InvalidDataException($"Raw stream {stream} holds {stored.Length} bytes where {destination.Length} are expected.");
            }
            return true;
        }
        try
        {
            switch (mode)
            {
                case EncodedTensorFormat.ModeZstd:
                    // The destination has exactly the expected size, so a corrupt frame can never make zstd allocate or write more.
                    _zstd.DecompressExact(stored, destination);
                    return false;
                case EncodedTensorFormat.ModeSparseZstd:
                    DecompressSparse(stored, destination);
                    return false;
                case EncodedTensorFormat.ModeRans:
                    _rans.Decode(stored, default, 1, destination, lanes);
                    return false;
                default:
                    throw new InvalidDataException($"unknown mode {mode}.");
            }
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"Stream {stream}: {ex.Message}", ex);
        }
    }

    private Span<byte> Trial(int length) => Scratch(ref _trial, length);

    /// <summary>A pooled scratch buffer of at least <paramref name="length"/> bytes, grown when needed.</summary>
    private static Span<byte> Scratch(ref ChunkBuffer? buffer, int length)
    {
        if (buffer is null || buffer.Length < length)
        {
            ReturnBuffer(ref buffer);
            buffer = ChunkBuffers.Rent(length);
        }
        return buffer.AsSpan(0, length);
    }

    private static void ReturnBuffer(ref ChunkBuffer? buffer)
    {
        if (buffer is not null)
        {
            ChunkBuffers.Return(buffer);
            buffer = null;
        }
    }

    /// <summary>Split stream <paramref name="stream"/>'s buffer, held from construction to disposal.</summary>
    private ChunkBuffer Stream(int stream) => _streams[stream] ?? throw new ObjectDisposedException(nameof(ChunkCodec));

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
    private Span<byte> SparseScratch() =>
        Scratch(ref _sparse, SparseBytes.BitmapLength(_options.ChunkSize) + _options.ChunkSize + SparseBytes.Slack);

    /// <summary>The decoded streams of one chunk: each in the codec's scratch buffer, or, when stored raw, in the encoded chunk.</summary>
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
