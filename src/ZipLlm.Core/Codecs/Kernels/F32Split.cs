using System.Buffers.Binary;

namespace ZipLlm.Codecs.Kernels;

/// <summary>
/// Splits little-endian 32-bit IEEE singles into four byte streams and merges them back,
/// optionally XOR-ing with a base. The top half of a single is a BF16 word, so the first two
/// streams are the BF16 split of it (exponent bits 30..23; sign bit 31 above mantissa bits 22..16);
/// the last two are the low mantissa bytes (bits 15..8, then 7..0), which are close to random.
/// </summary>
internal static class F32Split
{
    /// <summary>Number of streams the split produces.</summary>
    public const int StreamCount = 4;

    /// <summary>Splits <paramref name="words"/> (XOR <paramref name="xorWith"/> when not empty) into four streams of one byte per word.</summary>
    /// <exception cref="ArgumentException">Lengths are inconsistent.</exception>
    public static void Split(ReadOnlySpan<byte> words, ReadOnlySpan<byte> xorWith, Span<byte> exponent, Span<byte> signHigh, Span<byte> mid, Span<byte> low)
    {
        int count = CheckLengths(words, xorWith, exponent, signHigh, mid, low);
        bool xor = !xorWith.IsEmpty;
        for (int i = 0; i < count; i++)
        {
            uint w = BinaryPrimitives.ReadUInt32LittleEndian(words.Slice(4 * i, 4));
            if (xor)
            {
                w ^= BinaryPrimitives.ReadUInt32LittleEndian(xorWith.Slice(4 * i, 4));
            }
            exponent[i] = (byte)(w >> 23);
            signHigh[i] = (byte)(((w >> 24) & 0x80) | ((w >> 16) & 0x7F));
            mid[i] = (byte)(w >> 8);
            low[i] = (byte)w;
        }
    }

    /// <summary>Rebuilds words from the four streams, XOR-ing with <paramref name="xorWith"/> when not empty.</summary>
    /// <exception cref="ArgumentException">Lengths are inconsistent.</exception>
    public static void Merge(ReadOnlySpan<byte> exponent, ReadOnlySpan<byte> signHigh, ReadOnlySpan<byte> mid, ReadOnlySpan<byte> low, ReadOnlySpan<byte> xorWith, Span<byte> words)
    {
        int count = CheckLengths(words, xorWith, exponent, signHigh, mid, low);
        bool xor = !xorWith.IsEmpty;
        for (int i = 0; i < count; i++)
        {
            uint s = signHigh[i];
            uint w = ((s & 0x80) << 24) | ((uint)exponent[i] << 23) | ((s & 0x7F) << 16) | ((uint)mid[i] << 8) | low[i];
            if (xor)
            {
                w ^= BinaryPrimitives.ReadUInt32LittleEndian(xorWith.Slice(4 * i, 4));
            }
            BinaryPrimitives.WriteUInt32LittleEndian(words.Slice(4 * i, 4), w);
        }
    }

    private static int CheckLengths(ReadOnlySpan<byte> words, ReadOnlySpan<byte> xorWith, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, ReadOnlySpan<byte> d)
    {
        if (words.Length % 4 != 0)
        {
            throw new ArgumentException("Word buffer length must be a multiple of 4.", nameof(words));
        }
        int count = words.Length / 4;
        if (a.Length != count || b.Length != count || c.Length != count || d.Length != count)
        {
            throw new ArgumentException("Each stream must hold one byte per word.");
        }
        if (!xorWith.IsEmpty && xorWith.Length != words.Length)
        {
            throw new ArgumentException("The XOR base must be as long as the words.", nameof(xorWith));
        }
        return count;
    }
}
