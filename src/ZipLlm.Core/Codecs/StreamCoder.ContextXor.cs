using System.IO.Hashing;
using System.Runtime.InteropServices;
using ZipLlm.Codecs.Entropy;
using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Codecs;

// The context XOR: BitX's split of the XOR, its exponent and sign+mantissa streams rANS-coded in the context of the base word's exponent.
internal sealed partial class StreamCoder
{
    /// <summary>
    /// Streams of a <see cref="ChunkTransform.ContextXor"/> chunk coded in the base exponent's context: the exponent
    /// stream and the sign+mantissa stream (for F32 the sign and high mantissa bits); an F32 chunk's two low mantissa
    /// streams, close to random, are stored as a split stream is.
    /// </summary>
    private const int ContextStreams = 2;

    /// <summary>Whether a chunk of <paramref name="length"/> bytes of <paramref name="layout"/> can be stored as a context XOR.</summary>
    public static bool FitsContextXor(ElementLayout layout, int length) =>
        layout == ElementLayout.Word32 || (layout.IsHalfWord() && length % 2 == 0);

    /// <summary>
    /// The chunk XOR its base, split by field as BitX splits it, the exponent and sign+mantissa streams rANS-coded in
    /// the context of the base word's exponent (<see cref="BaseExponents"/>), or kept raw when that is not smaller.
    /// </summary>
    /// <param name="layout">How the chunk's words are grouped.</param>
    /// <param name="chunk">The chunk's bytes.</param>
    /// <param name="baseChunk">The base's bytes at the same place, as long as the chunk.</param>
    /// <param name="destination">Where the encoded chunk goes.</param>
    /// <param name="estimated">
    /// The coder is as <see cref="EstimateContextXor"/> of this very chunk left it (its streams, contexts and counts): they are
    /// not taken again.
    /// </param>
    public int EncodeContextXor(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<byte> destination, bool estimated = false)
    {
        int streamCount = layout.StreamCount();
        Span<int> lengths = stackalloc int[streamCount];
        int words;
        if (estimated)
        {
            words = chunk.Length / layout.WordSize();
            for (int s = 0; s < streamCount; s++)
            {
                lengths[s] = layout.StreamLength(chunk.Length, s);
            }
        }
        else
        {
            words = SplitInContexts(layout, chunk, baseChunk, lengths);
        }
        ReadOnlySpan<byte> contexts = _contexts.Get(words);
        int entry = ChunkHeader.Write(destination, chunk.Length, XxHash3.HashToUInt64(chunk), ChunkTransform.ContextXor);
        int position = entry + streamCount * EncodedTensorFormat.StreamEntrySize;
        for (int s = 0; s < streamCount; s++)
        {
            ReadOnlySpan<byte> stream = Stream(s).AsSpan(0, lengths[s]);
            position += s < ContextStreams
                ? WriteSymbols(stream, contexts, BaseExponents.ContextCount, counted: estimated && s == 0, destination[entry..], destination[position..])
                : WriteStream(stream, _options.Level, destination[entry..], destination[position..]);
            entry += EncodedTensorFormat.StreamEntrySize;
        }
        return position;
    }

    /// <summary>
    /// What <see cref="EncodeContextXor"/> would write for a chunk of 16-bit floats, from the symbol counts in their
    /// contexts (each stream at most its raw length); the split streams and contexts are left in the scratch, and the
    /// exponent stream's counts in the rANS coder (the last counted), for <see cref="EncodeContextXor"/> to take up.
    /// </summary>
    public long EstimateContextXor(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk)
    {
        Span<int> lengths = stackalloc int[ContextStreams];
        int words = SplitInContexts(layout, chunk, baseChunk, lengths);
        ReadOnlySpan<byte> contexts = _contexts.Get(words);
        long total = ChunkHeader.SizeOf(EncodedTensorFormat.Version) + ContextStreams * EncodedTensorFormat.StreamEntrySize;
        for (int s = ContextStreams - 1; s >= 0; s--)
        {
            total += Math.Min(words, _rans.EstimateLength(Stream(s).AsSpan(0, words), contexts, BaseExponents.ContextCount, _lanes));
        }
        return total;
    }

    /// <summary>Decodes a context XOR chunk's streams (the encoded chunk past its header) against the base into <paramref name="destination"/>.</summary>
    /// <exception cref="InvalidDataException">The streams are corrupt, truncated, or of a mode this transform does not write.</exception>
    public void DecodeContextXor(ElementLayout layout, ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int lanes)
    {
        if (!FitsContextXor(layout, destination.Length))
        {
            throw new InvalidDataException($"A context XOR chunk of {destination.Length} bytes does not fit a {layout} tensor.");
        }
        int streamCount = layout.StreamCount();
        int position = streamCount * EncodedTensorFormat.StreamEntrySize;
        if (encoded.Length < position)
        {
            throw new InvalidDataException($"Encoded chunk of {encoded.Length} bytes is shorter than its header.");
        }
        int wordSize = layout.WordSize(), words = destination.Length / wordSize;
        ReadOnlySpan<byte> baseBody = baseChunk[..(words * wordSize)];
        // 16-bit words: the vector decoder computes each symbol's context from its base word beside its gathers.
        // F32: the contexts of the words' top halves, computed first.
        ReadOnlySpan<byte> contexts = default;
        if (layout == ElementLayout.Word32)
        {
            Span<byte> computed = _contexts.Get(words);
            BaseExponents.Contexts(layout, baseBody, computed);
            contexts = computed;
        }
        Span<int> lengths = stackalloc int[streamCount];
        Span<int> rawAt = stackalloc int[streamCount];
        for (int s = 0; s < streamCount; s++)
        {
            lengths[s] = layout.StreamLength(destination.Length, s);
            ReadOnlySpan<byte> stored = StoredStream(encoded, s, ref position, out byte mode);
            Span<byte> stream = Stream(s).AsSpan(0, lengths[s]);
            if (s >= ContextStreams || mode == EncodedTensorFormat.ModeRaw)
            {
                rawAt[s] = ReadStream(mode, stored, stream, s, lanes) ? position - stored.Length : -1;
                continue;
            }
            if (mode != EncodedTensorFormat.ModeRans)
            {
                throw new InvalidDataException($"Stream {s}: mode {mode} is not one a context XOR writes.");
            }
            rawAt[s] = -1;
            try
            {
                if (contexts.IsEmpty)
                {
                    _rans.Decode(stored, MemoryMarshal.Cast<byte, ushort>(baseBody), BaseExponents.Rule(layout), BaseExponents.ContextCount, stream, lanes);
                }
                else
                {
                    _rans.Decode(stored, contexts, BaseExponents.ContextCount, stream, lanes);
                }
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"Stream {s}: {ex.Message}", ex);
            }
        }
        if (position != encoded.Length)
        {
            throw new InvalidDataException($"Encoded chunk has {encoded.Length - position} unexpected trailing bytes.");
        }
        MergeStreams(layout, new DecodedStreams(_streams, encoded, lengths, rawAt), baseChunk, destination);
    }

    /// <summary>
    /// Splits the chunk XOR its base into the split stream buffers and the base words' contexts into the context scratch;
    /// <paramref name="lengths"/> (the first streams' or all of them) gets the streams' lengths. Returns the whole words.
    /// </summary>
    private int SplitInContexts(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, Span<int> lengths)
    {
        Span<int> all = stackalloc int[layout.StreamCount()];
        SplitStreams(layout, chunk, baseChunk, all);
        all[..lengths.Length].CopyTo(lengths);
        int wordSize = layout.WordSize(), words = chunk.Length / wordSize;
        BaseExponents.Contexts(layout, baseChunk[..(words * wordSize)], _contexts.Get(words));
        return words;
    }
}
