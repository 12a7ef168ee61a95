using System.IO.Hashing;
using System.Runtime.InteropServices;
using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Codecs;

// The ordered difference of 16-bit words as two streams: symbols rANS-coded in the context of the base's exponents, and escapes.
internal sealed partial class StreamCoder
{
    /// <summary>
    /// The ordered difference of 16-bit words into the symbol, context and escape scratch, and the estimate of its coded
    /// size (the rANS coder then holds the symbols' counts); <see cref="long.MaxValue"/> when the escapes alone would take
    /// as much as solo does.
    /// </summary>
    public long ForwardDifference(ElementLayout layout, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> baseChunk, out int escaped)
    {
        int words = chunk.Length / 2, body = 2 * words;
        Span<byte> symbols = _symbols.Get(words), contexts = _contexts.Get(words), escapes = _escapes.Get(chunk.Length + 1);
        escaped = OrderedDifference.Forward(chunk[..body], baseChunk[..body], layout, symbols, contexts, escapes);
        if (escaped > chunk.Length * CodecTuning.HopelessEscapes)
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
    public int WriteDifference(ReadOnlySpan<byte> chunk, int escaped, Span<byte> destination, bool counted)
    {
        int words = chunk.Length / 2;
        int entry = ChunkHeader.Write(destination, chunk.Length, XxHash3.HashToUInt64(chunk), ChunkTransform.OrderedDifference);
        int position = entry + 2 * EncodedTensorFormat.StreamEntrySize;
        position += WriteSymbols(_symbols.Get(words), _contexts.Get(words), OrderedDifference.ContextCount, counted,
            destination[entry..], destination[position..]);
        entry += EncodedTensorFormat.StreamEntrySize;
        position += WriteStream(_escapes.Get(escaped), _options.Level, destination[entry..], destination[position..]);
        return position;
    }

    /// <summary>Decodes an ordered-difference chunk's streams (the encoded chunk past its header) against the base into <paramref name="destination"/>.</summary>
    public void DecodeDifference(ElementLayout layout, ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> baseChunk, Span<byte> destination, int lanes)
    {
        int words = destination.Length / 2, body = 2 * words;
        int position = 2 * EncodedTensorFormat.StreamEntrySize;
        if (encoded.Length < position)
        {
            throw new InvalidDataException($"Encoded chunk of {encoded.Length} bytes is shorter than its header.");
        }
        Span<byte> symbols = _symbols.Get(words);
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
        Span<byte> escapes = _escapes.Get(escapeLength);
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
}
