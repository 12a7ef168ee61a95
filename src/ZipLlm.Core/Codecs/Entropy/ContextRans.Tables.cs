using System.Numerics;

namespace ZipLlm.Codecs.Entropy;

// The table format: what the stream stores of each context's frequencies, and the coder's tables built from it.
internal sealed partial class ContextRans
{
    // A context's table lists its symbols, or, from BitmapTag symbols, carries a bitmap of BitmapBytes (the tag says which).
    private const int BitmapBytes = 32;
    private const int BitmapTag = 32;

    /// <summary>
    /// Writes the context count and each context's table (its symbols, listed or as a bitmap, and their frequencies) to
    /// <paramref name="destination"/>, and builds the encoder's tables from the counts <see cref="Count"/> took: the
    /// vector encoder's too when <paramref name="vector"/>.
    /// </summary>
    /// <returns>Bytes written.</returns>
    private int WriteTables(int contextCount, bool vector, Span<byte> destination)
    {
        Grow(ref _encode, contextCount * 256);
        if (vector)
        {
            Grow(ref _vectorEncode, 2 * contextCount * 256);
        }
        destination[0] = (byte)contextCount;
        int position = 1;
        Span<int> freqs = stackalloc int[256];
        for (int c = 0; c < contextCount; c++)
        {
            if (!Normalize(_counts.AsSpan(c * 256, 256), freqs))
            {
                destination[position++] = 0;
                continue;
            }
            int present = 256 - freqs.Count(0);
            if (present < BitmapTag)
            {
                destination[position++] = (byte)present;
                for (int s = 0; s < 256; s++)
                {
                    if (freqs[s] != 0)
                    {
                        destination[position++] = (byte)s;
                    }
                }
            }
            else
            {
                destination[position++] = BitmapTag;
                Span<byte> bitmap = destination.Slice(position, BitmapBytes);
                bitmap.Clear();
                for (int s = 0; s < 256; s++)
                {
                    if (freqs[s] != 0)
                    {
                        bitmap[s >> 3] |= (byte)(1 << (s & 7));
                    }
                }
                position += BitmapBytes;
            }
            int start = 0;
            for (int s = 0; s < 256; s++)
            {
                if (freqs[s] == 0)
                {
                    continue;
                }
                position += WriteVarint(destination[position..], (uint)freqs[s] - 1);
                var e = new EncodeSymbol(start, freqs[s]);
                _encode[c * 256 + s] = e;
                if (vector)
                {
                    _vectorEncode[2 * (c * 256 + s)] = e.Reciprocal;
                    _vectorEncode[2 * (c * 256 + s) + 1] = (uint)freqs[s] | e.Bias << 13 | (e.ComplementShift >> 16) << 26;
                }
                start += freqs[s];
            }
        }
        return position;
    }

    /// <summary>
    /// Reads the context count and each context's table from <paramref name="encoded"/> into the decoder's table, one entry
    /// a slot, checking every field: a symbol listed twice or out of order, an unknown tag, frequencies that do not sum to
    /// the scale or a table cut short are refused.
    /// </summary>
    /// <returns>Bytes read: where the lanes' states start.</returns>
    /// <exception cref="InvalidDataException">The tables are corrupt or truncated, or hold another number of contexts.</exception>
    private int ReadTables(ReadOnlySpan<byte> encoded, int contextCount)
    {
        if (encoded.IsEmpty || encoded[0] != contextCount)
        {
            throw new InvalidDataException($"rANS stream holds {(encoded.IsEmpty ? 0 : encoded[0])} contexts where {contextCount} are expected.");
        }
        Grow(ref _decode, contextCount * Scale);
        int position = 1;
        Span<bool> holds = stackalloc bool[256];
        for (int c = 0; c < contextCount; c++)
        {
            if (position >= encoded.Length)
            {
                throw new InvalidDataException("rANS stream is truncated in its tables.");
            }
            int tag = encoded[position++];
            Span<uint> table = _decode.AsSpan(c * Scale, Scale);
            if (tag == 0)
            {
                // An unused context: no symbol names it when the encoding is sound. Its table decodes symbol 0
                // whatever the state, so a corrupt one cannot read stale memory, only fail its checksum.
                for (int slot = 0; slot < Scale; slot++)
                {
                    table[slot] = (Scale - 1u) << 20 | (uint)slot << 8;
                }
                continue;
            }
            holds.Clear();
            if (tag < BitmapTag)
            {
                if (encoded.Length - position < tag)
                {
                    throw new InvalidDataException("rANS stream is truncated in its tables.");
                }
                for (int k = 0; k < tag; k++)
                {
                    byte symbol = encoded[position + k];
                    if (k > 0 && symbol <= encoded[position + k - 1])
                    {
                        throw new InvalidDataException("rANS table lists its symbols out of order.");
                    }
                    holds[symbol] = true;
                }
                position += tag;
            }
            else if (tag == BitmapTag)
            {
                if (encoded.Length - position < BitmapBytes)
                {
                    throw new InvalidDataException("rANS stream is truncated in its tables.");
                }
                for (int symbol = 0; symbol < 256; symbol++)
                {
                    holds[symbol] = (encoded[position + (symbol >> 3)] & (1 << (symbol & 7))) != 0;
                }
                position += BitmapBytes;
            }
            else
            {
                throw new InvalidDataException($"rANS table has unknown tag {tag}.");
            }
            int start = 0;
            for (int s = 0; s < 256; s++)
            {
                if (!holds[s])
                {
                    continue;
                }
                uint freq = ReadVarint(encoded, ref position) + 1;
                if (freq > (uint)(Scale - start))
                {
                    throw new InvalidDataException("rANS table frequencies exceed the scale.");
                }
                // Each slot: frequency - 1 (bits 31..20), slot - start (19..8), symbol (7..0).
                for (int slot = 0; slot < (int)freq; slot++)
                {
                    table[start + slot] = (freq - 1) << 20 | (uint)slot << 8 | (uint)s;
                }
                start += (int)freq;
            }
            if (start != Scale)
            {
                throw new InvalidDataException("rANS table frequencies do not sum to the scale.");
            }
        }
        return position;
    }

    private static int WriteVarint(Span<byte> destination, uint value)
    {
        int n = 0;
        while (value >= 0x80)
        {
            destination[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[n++] = (byte)value;
        return n;
    }

    private static uint ReadVarint(ReadOnlySpan<byte> source, ref int position)
    {
        uint value = 0;
        for (int shift = 0; shift < 14; shift += 7)
        {
            if (position >= source.Length)
            {
                throw new InvalidDataException("rANS stream is truncated in its tables.");
            }
            byte b = source[position++];
            value |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
        throw new InvalidDataException("rANS table frequency is too long.");
    }

    /// <summary>A symbol's encoding constants (ryg_rans's RansEncSymbol): division by its frequency as a multiply and shift.</summary>
    private readonly struct EncodeSymbol
    {
        public readonly uint Max;
        public readonly uint Reciprocal;
        public readonly uint Bias;
        /// <summary>Scale - frequency in bits 15..0, the reciprocal's shift in bits 20..16: 16 bytes a symbol.</summary>
        public readonly uint ComplementShift;

        public EncodeSymbol(int start, int freq)
        {
            // The state before coding must stay below Max, so that coding keeps it below 2^31.
            Max = (uint)freq << (31 - ScaleBits);
            uint complement = (uint)(Scale - freq);
            if (freq < 2)
            {
                Reciprocal = uint.MaxValue;
                ComplementShift = complement;
                Bias = (uint)(start + Scale - 1);
            }
            else
            {
                int shift = 32 - BitOperations.LeadingZeroCount((uint)freq - 1);
                Reciprocal = (uint)(((1ul << (shift + 31)) + (uint)freq - 1) / (uint)freq);
                ComplementShift = complement | (uint)(shift - 1) << 16;
                Bias = (uint)start;
            }
        }
    }
}
