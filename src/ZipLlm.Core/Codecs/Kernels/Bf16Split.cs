using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ZipLlm.Codecs.Kernels;

/// <summary>
/// Splits little-endian 16-bit words into the two BitX streams and merges them back, optionally
/// XOR-ing with a base in the same pass. For a BF16 word (sign 15, exponent 14..7, mantissa 6..0):
/// the exponent stream byte is bits 14..7; the sign+mantissa stream byte is bit 15 as its top bit
/// and bits 6..0 below it. F16 words use the same split: bits 14..7 hold its 5 exponent bits and
/// the top 3 mantissa bits, which is the low-entropy part of the word.
/// </summary>
internal static class Bf16Split
{
    /// <summary>
    /// Splits <paramref name="words"/> (XOR <paramref name="xorWith"/> when it is not empty) into
    /// <paramref name="exponent"/> and <paramref name="signMantissa"/>, one byte per word each.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths are odd or inconsistent.</exception>
    public static void Split(ReadOnlySpan<byte> words, ReadOnlySpan<byte> xorWith, Span<byte> exponent, Span<byte> signMantissa)
    {
        int count = CheckLengths(words, xorWith, exponent, signMantissa);
        bool xor = !xorWith.IsEmpty;
        ref byte src = ref MemoryMarshal.GetReference(words);
        ref byte bas = ref xor ? ref MemoryMarshal.GetReference(xorWith) : ref src;
        ref byte exp = ref MemoryMarshal.GetReference(exponent);
        ref byte sm = ref MemoryMarshal.GetReference(signMantissa);
        nuint n = (nuint)count;
        nuint i = 0;

        // Each step loads two vectors of words (2 * lanes words) and narrows each field to one vector of bytes.
        if (BitConverter.IsLittleEndian && Vector512.IsHardwareAccelerated)
        {
            nuint step = (nuint)Vector512<byte>.Count;
            for (; i + step <= n; i += step)
            {
                Vector512<ushort> w0 = Vector512.LoadUnsafe(ref src, 2 * i).AsUInt16();
                Vector512<ushort> w1 = Vector512.LoadUnsafe(ref src, 2 * i + step).AsUInt16();
                if (xor)
                {
                    w0 ^= Vector512.LoadUnsafe(ref bas, 2 * i).AsUInt16();
                    w1 ^= Vector512.LoadUnsafe(ref bas, 2 * i + step).AsUInt16();
                }
                Vector512.Narrow((w0 >> 7) & Vector512.Create((ushort)0xFF), (w1 >> 7) & Vector512.Create((ushort)0xFF)).StoreUnsafe(ref exp, i);
                Vector512.Narrow(SignMantissa(w0), SignMantissa(w1)).StoreUnsafe(ref sm, i);
            }
        }
        if (BitConverter.IsLittleEndian && Vector256.IsHardwareAccelerated)
        {
            nuint step = (nuint)Vector256<byte>.Count;
            for (; i + step <= n; i += step)
            {
                Vector256<ushort> w0 = Vector256.LoadUnsafe(ref src, 2 * i).AsUInt16();
                Vector256<ushort> w1 = Vector256.LoadUnsafe(ref src, 2 * i + step).AsUInt16();
                if (xor)
                {
                    w0 ^= Vector256.LoadUnsafe(ref bas, 2 * i).AsUInt16();
                    w1 ^= Vector256.LoadUnsafe(ref bas, 2 * i + step).AsUInt16();
                }
                Vector256.Narrow((w0 >> 7) & Vector256.Create((ushort)0xFF), (w1 >> 7) & Vector256.Create((ushort)0xFF)).StoreUnsafe(ref exp, i);
                Vector256.Narrow(SignMantissa(w0), SignMantissa(w1)).StoreUnsafe(ref sm, i);
            }
        }
        if (BitConverter.IsLittleEndian && Vector128.IsHardwareAccelerated)
        {
            nuint step = (nuint)Vector128<byte>.Count;
            for (; i + step <= n; i += step)
            {
                Vector128<ushort> w0 = Vector128.LoadUnsafe(ref src, 2 * i).AsUInt16();
                Vector128<ushort> w1 = Vector128.LoadUnsafe(ref src, 2 * i + step).AsUInt16();
                if (xor)
                {
                    w0 ^= Vector128.LoadUnsafe(ref bas, 2 * i).AsUInt16();
                    w1 ^= Vector128.LoadUnsafe(ref bas, 2 * i + step).AsUInt16();
                }
                Vector128.Narrow((w0 >> 7) & Vector128.Create((ushort)0xFF), (w1 >> 7) & Vector128.Create((ushort)0xFF)).StoreUnsafe(ref exp, i);
                Vector128.Narrow(SignMantissa(w0), SignMantissa(w1)).StoreUnsafe(ref sm, i);
            }
        }
        for (; i < n; i++)
        {
            ushort w = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref src, 2 * i));
            if (xor)
            {
                w ^= Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref bas, 2 * i));
            }
            if (!BitConverter.IsLittleEndian)
            {
                w = BinaryPrimitives.ReverseEndianness(w);
            }
            Unsafe.Add(ref exp, i) = (byte)(w >> 7);
            Unsafe.Add(ref sm, i) = (byte)(((w >> 8) & 0x80) | (w & 0x7F));
        }
    }

    /// <summary>
    /// Rebuilds words from <paramref name="exponent"/> and <paramref name="signMantissa"/> into
    /// <paramref name="words"/>, XOR-ing with <paramref name="xorWith"/> when it is not empty.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths are odd or inconsistent.</exception>
    public static void Merge(ReadOnlySpan<byte> exponent, ReadOnlySpan<byte> signMantissa, ReadOnlySpan<byte> xorWith, Span<byte> words)
    {
        int count = CheckLengths(words, xorWith, exponent, signMantissa);
        bool xor = !xorWith.IsEmpty;
        ref byte dst = ref MemoryMarshal.GetReference(words);
        ref byte bas = ref xor ? ref MemoryMarshal.GetReference(xorWith) : ref dst;
        ref byte exp = ref MemoryMarshal.GetReference(exponent);
        ref byte sm = ref MemoryMarshal.GetReference(signMantissa);
        nuint n = (nuint)count;
        nuint i = 0;

        // Each step widens one vector of each stream into two vectors of words.
        if (BitConverter.IsLittleEndian && Vector512.IsHardwareAccelerated)
        {
            nuint step = (nuint)Vector512<byte>.Count;
            for (; i + step <= n; i += step)
            {
                (Vector512<ushort> e0, Vector512<ushort> e1) = Vector512.Widen(Vector512.LoadUnsafe(ref exp, i));
                (Vector512<ushort> s0, Vector512<ushort> s1) = Vector512.Widen(Vector512.LoadUnsafe(ref sm, i));
                Vector512<ushort> w0 = Word(e0, s0), w1 = Word(e1, s1);
                if (xor)
                {
                    w0 ^= Vector512.LoadUnsafe(ref bas, 2 * i).AsUInt16();
                    w1 ^= Vector512.LoadUnsafe(ref bas, 2 * i + step).AsUInt16();
                }
                w0.AsByte().StoreUnsafe(ref dst, 2 * i);
                w1.AsByte().StoreUnsafe(ref dst, 2 * i + step);
            }
        }
        if (BitConverter.IsLittleEndian && Vector256.IsHardwareAccelerated)
        {
            nuint step = (nuint)Vector256<byte>.Count;
            for (; i + step <= n; i += step)
            {
                (Vector256<ushort> e0, Vector256<ushort> e1) = Vector256.Widen(Vector256.LoadUnsafe(ref exp, i));
                (Vector256<ushort> s0, Vector256<ushort> s1) = Vector256.Widen(Vector256.LoadUnsafe(ref sm, i));
                Vector256<ushort> w0 = Word(e0, s0), w1 = Word(e1, s1);
                if (xor)
                {
                    w0 ^= Vector256.LoadUnsafe(ref bas, 2 * i).AsUInt16();
                    w1 ^= Vector256.LoadUnsafe(ref bas, 2 * i + step).AsUInt16();
                }
                w0.AsByte().StoreUnsafe(ref dst, 2 * i);
                w1.AsByte().StoreUnsafe(ref dst, 2 * i + step);
            }
        }
        if (BitConverter.IsLittleEndian && Vector128.IsHardwareAccelerated)
        {
            nuint step = (nuint)Vector128<byte>.Count;
            for (; i + step <= n; i += step)
            {
                (Vector128<ushort> e0, Vector128<ushort> e1) = Vector128.Widen(Vector128.LoadUnsafe(ref exp, i));
                (Vector128<ushort> s0, Vector128<ushort> s1) = Vector128.Widen(Vector128.LoadUnsafe(ref sm, i));
                Vector128<ushort> w0 = Word(e0, s0), w1 = Word(e1, s1);
                if (xor)
                {
                    w0 ^= Vector128.LoadUnsafe(ref bas, 2 * i).AsUInt16();
                    w1 ^= Vector128.LoadUnsafe(ref bas, 2 * i + step).AsUInt16();
                }
                w0.AsByte().StoreUnsafe(ref dst, 2 * i);
                w1.AsByte().StoreUnsafe(ref dst, 2 * i + step);
            }
        }
        for (; i < n; i++)
        {
            int e = Unsafe.Add(ref exp, i), s = Unsafe.Add(ref sm, i);
            ushort w = (ushort)(((s & 0x80) << 8) | (e << 7) | (s & 0x7F));
            if (!BitConverter.IsLittleEndian)
            {
                w = BinaryPrimitives.ReverseEndianness(w);
            }
            if (xor)
            {
                w ^= Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref bas, 2 * i));
            }
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, 2 * i), w);
        }
    }

    /// <summary>The scalar twin of <see cref="Split"/>, kept for tests and benchmarks.</summary>
    public static void SplitScalar(ReadOnlySpan<byte> words, ReadOnlySpan<byte> xorWith, Span<byte> exponent, Span<byte> signMantissa)
    {
        int count = CheckLengths(words, xorWith, exponent, signMantissa);
        for (int i = 0; i < count; i++)
        {
            int w = BinaryPrimitives.ReadUInt16LittleEndian(words[(2 * i)..]);
            if (!xorWith.IsEmpty)
            {
                w ^= BinaryPrimitives.ReadUInt16LittleEndian(xorWith[(2 * i)..]);
            }
            exponent[i] = (byte)(w >> 7);
            signMantissa[i] = (byte)(((w >> 8) & 0x80) | (w & 0x7F));
        }
    }

    /// <summary>The scalar twin of <see cref="Merge"/>, kept for tests and benchmarks.</summary>
    public static void MergeScalar(ReadOnlySpan<byte> exponent, ReadOnlySpan<byte> signMantissa, ReadOnlySpan<byte> xorWith, Span<byte> words)
    {
        int count = CheckLengths(words, xorWith, exponent, signMantissa);
        for (int i = 0; i < count; i++)
        {
            int e = exponent[i], s = signMantissa[i];
            int w = ((s & 0x80) << 8) | (e << 7) | (s & 0x7F);
            if (!xorWith.IsEmpty)
            {
                w ^= BinaryPrimitives.ReadUInt16LittleEndian(xorWith[(2 * i)..]);
            }
            BinaryPrimitives.WriteUInt16LittleEndian(words[(2 * i)..], (ushort)w);
        }
    }

    private static int CheckLengths(ReadOnlySpan<byte> words, ReadOnlySpan<byte> xorWith, ReadOnlySpan<byte> exponent, ReadOnlySpan<byte> signMantissa)
    {
        if (words.Length % 2 != 0)
        {
            throw new ArgumentException("Word buffer length must be even.", nameof(words));
        }
        int count = words.Length / 2;
        if (exponent.Length != count || signMantissa.Length != count)
        {
            throw new ArgumentException("Each stream must hold one byte per word.");
        }
        if (!xorWith.IsEmpty && xorWith.Length != words.Length)
        {
            throw new ArgumentException("The XOR base must be as long as the words.", nameof(xorWith));
        }
        return count;
    }

    // Lanes are little-endian 16-bit words: bit 15 sign, 14..7 exponent, 6..0 mantissa.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ushort> SignMantissa(Vector512<ushort> w) =>
        ((w >> 8) & Vector512.Create((ushort)0x80)) | (w & Vector512.Create((ushort)0x7F));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> SignMantissa(Vector256<ushort> w) =>
        ((w >> 8) & Vector256.Create((ushort)0x80)) | (w & Vector256.Create((ushort)0x7F));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ushort> SignMantissa(Vector128<ushort> w) =>
        ((w >> 8) & Vector128.Create((ushort)0x80)) | (w & Vector128.Create((ushort)0x7F));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ushort> Word(Vector512<ushort> e, Vector512<ushort> s) =>
        ((s & Vector512.Create((ushort)0x80)) << 8) | (e << 7) | (s & Vector512.Create((ushort)0x7F));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> Word(Vector256<ushort> e, Vector256<ushort> s) =>
        ((s & Vector256.Create((ushort)0x80)) << 8) | (e << 7) | (s & Vector256.Create((ushort)0x7F));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ushort> Word(Vector128<ushort> e, Vector128<ushort> s) =>
        ((s & Vector128.Create((ushort)0x80)) << 8) | (e << 7) | (s & Vector128.Create((ushort)0x7F));
}
