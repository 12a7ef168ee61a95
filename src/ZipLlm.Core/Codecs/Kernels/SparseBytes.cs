using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ZipLlm.Codecs.Kernels;

/// <summary>
/// Splits a mostly-zero byte stream into a bitmap of its non-zero bytes (bit j of byte i: byte 8i+j is not zero)
/// and the non-zero bytes in order, and puts it back. A finetune's XOR-ed exponent stream is about 95% zeros:
/// zstd stores the two parts a third smaller than the stream itself and decodes them twice as fast.
/// Each direction has an SSSE3 path (one shuffle per 8 bytes) and a scalar twin, tested against each other.
/// </summary>
internal static class SparseBytes
{
    /// <summary>Extra bytes the value buffer needs past its last value: the vector paths move 16 bytes at a time.</summary>
    public const int Slack = 16;

    // For each 8-bit mask: the shuffle that gathers the masked bytes of 8 to the front (compact), and the one that
    // scatters the front bytes to the masked places, zero elsewhere (expand). 0x80 makes pshufb write a zero.
    private static readonly ulong[] CompactShuffles = BuildShuffles(expand: false);
    private static readonly ulong[] ExpandShuffles = BuildShuffles(expand: true);

    /// <summary>Bytes of bitmap for a stream of <paramref name="length"/> bytes.</summary>
    public static int BitmapLength(int length) => (length + 7) / 8;

    /// <summary>
    /// Writes the bitmap of <paramref name="source"/>'s non-zero bytes and the non-zero bytes themselves.
    /// <paramref name="values"/> must hold as many bytes as the source plus <see cref="Slack"/>.
    /// </summary>
    /// <returns>Non-zero bytes written to <paramref name="values"/>.</returns>
    /// <exception cref="ArgumentException">A destination is too small.</exception>
    public static int Compact(ReadOnlySpan<byte> source, Span<byte> bitmap, Span<byte> values) =>
        Ssse3.IsSupported ? CompactVector(source, bitmap, values) : CompactScalar(source, bitmap, values);

    /// <summary>
    /// Rebuilds the stream from its bitmap and values into <paramref name="destination"/>. <paramref name="values"/>
    /// must be readable <see cref="Slack"/> bytes past <paramref name="valueCount"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The bitmap does not account for exactly <paramref name="valueCount"/> values, or marks bytes past the end.</exception>
    public static void Expand(ReadOnlySpan<byte> bitmap, ReadOnlySpan<byte> values, int valueCount, Span<byte> destination)
    {
        Validate(bitmap, values, valueCount, destination.Length);
        if (Ssse3.IsSupported)
        {
            ExpandVector(bitmap, values, destination);
        }
        else
        {
            ExpandScalar(bitmap, values, destination);
        }
    }

    internal static int CompactScalar(ReadOnlySpan<byte> source, Span<byte> bitmap, Span<byte> values)
    {
        CheckCompactSizes(source, bitmap, values);
        bitmap[..BitmapLength(source.Length)].Clear();
        int count = 0;
        for (int i = 0; i < source.Length; i++)
        {
            if (source[i] != 0)
            {
                bitmap[i >> 3] |= (byte)(1 << (i & 7));
                values[count++] = source[i];
            }
        }
        return count;
    }

    internal static void ExpandScalar(ReadOnlySpan<byte> bitmap, ReadOnlySpan<byte> values, Span<byte> destination)
    {
        int next = 0;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = (bitmap[i >> 3] & (1 << (i & 7))) != 0 ? values[next++] : (byte)0;
        }
    }

    internal static int CompactVector(ReadOnlySpan<byte> source, Span<byte> bitmap, Span<byte> values)
    {
        CheckCompactSizes(source, bitmap, values);
        ref byte src = ref MemoryMarshal.GetReference(source);
        ref byte val = ref MemoryMarshal.GetReference(values);
        int body = source.Length & ~7;
        int count = 0;
        for (int i = 0; i < body; i += 8)
        {
            ulong word = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref src, i));
            int mask = NonZeroMask(word);
            bitmap[i >> 3] = (byte)mask;
            // No branch on the mask: in a 95%-zero stream a third of the masks are not zero, at random, and
            // mispredicting them cost more than always shuffling (an all-zero mask stores 8 ignored bytes).
            Vector128<byte> bytes = Vector128.CreateScalarUnsafe(word).AsByte();
            Vector128<byte> packed = Ssse3.Shuffle(bytes, Vector128.CreateScalarUnsafe(CompactShuffles[mask]).AsByte());
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref val, count), packed.AsUInt64().ToScalar());
            count += BitOperations.PopCount((uint)mask);
        }
        if (body < source.Length)
        {
            int last = 0;
            for (int i = body; i < source.Length; i++)
            {
                if (source[i] != 0)
                {
                    last |= 1 << (i - body);
                    values[count++] = source[i];
                }
            }
            bitmap[body >> 3] = (byte)last;
        }
        return count;
    }

    internal static void ExpandVector(ReadOnlySpan<byte> bitmap, ReadOnlySpan<byte> values, Span<byte> destination)
    {
        ref byte val = ref MemoryMarshal.GetReference(values);
        ref byte dst = ref MemoryMarshal.GetReference(destination);
        int body = destination.Length & ~7;
        int next = 0;
        for (int i = 0; i < body; i += 8)
        {
            int mask = bitmap[i >> 3];
            // Branch-free, as in CompactVector: an all-zero mask shuffles in eight zeros.
            Vector128<byte> front = Vector128.LoadUnsafe(ref val, (nuint)next);
            ulong word = Ssse3.Shuffle(front, Vector128.CreateScalarUnsafe(ExpandShuffles[mask]).AsByte()).AsUInt64().ToScalar();
            next += BitOperations.PopCount((uint)mask);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, i), word);
        }
        for (int i = body; i < destination.Length; i++)
        {
            destination[i] = (bitmap[i >> 3] & (1 << (i & 7))) != 0 ? values[next++] : (byte)0;
        }
    }

    /// <summary>Bit j set when byte j of <paramref name="word"/> (little-endian) is not zero.</summary>
    private static int NonZeroMask(ulong word)
    {
        const ulong Low7 = 0x7F7F7F7F7F7F7F7FUL;
        // High bit of each byte: set when the byte is not zero (no carries cross bytes).
        ulong high = (((word & Low7) + Low7) | word) & ~Low7;
        // Gather the 8 high bits into the top byte.
        return (int)(((high >> 7) * 0x0102040810204080UL) >> 56);
    }

    private static void Validate(ReadOnlySpan<byte> bitmap, ReadOnlySpan<byte> values, int valueCount, int length)
    {
        if (bitmap.Length != BitmapLength(length) || valueCount < 0 || valueCount > length || values.Length < valueCount + Slack)
        {
            throw new InvalidDataException($"Sparse stream: a bitmap of {bitmap.Length} bytes and {valueCount} values do not describe {length} bytes.");
        }
        int marked = 0;
        int whole = length / 8;
        for (int i = 0; i < whole; i++)
        {
            marked += BitOperations.PopCount(bitmap[i]);
        }
        if (whole < bitmap.Length)
        {
            int tail = bitmap[whole];
            if ((tail >> (length - whole * 8)) != 0)
            {
                throw new InvalidDataException("Sparse stream: the bitmap marks bytes past the end of the stream.");
            }
            marked += BitOperations.PopCount((uint)tail);
        }
        if (marked != valueCount)
        {
            throw new InvalidDataException($"Sparse stream: the bitmap marks {marked} non-zero bytes but {valueCount} are stored.");
        }
    }

    private static void CheckCompactSizes(ReadOnlySpan<byte> source, Span<byte> bitmap, Span<byte> values)
    {
        if (bitmap.Length < BitmapLength(source.Length) || values.Length < source.Length + Slack)
        {
            throw new ArgumentException("Bitmap or value buffer too small for the stream.");
        }
    }

    private static ulong[] BuildShuffles(bool expand)
    {
        var table = new ulong[256];
        for (int mask = 0; mask < 256; mask++)
        {
            ulong shuffle = 0x8080808080808080UL;
            int rank = 0;
            for (int j = 0; j < 8; j++)
            {
                if ((mask & (1 << j)) == 0)
                {
                    continue;
                }
                // Compact: output lane `rank` takes input lane j. Expand: output lane j takes input lane `rank`.
                int lane = expand ? j : rank;
                int from = expand ? rank : j;
                shuffle = (shuffle & ~(0xFFUL << (8 * lane))) | ((ulong)from << (8 * lane));
                rank++;
            }
            table[mask] = shuffle;
        }
        return table;
    }
}
