using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ZipLlm.Codecs.Kernels;

/// <summary>Byte-wise XOR of two equal-length buffers, vectorized with a scalar twin.</summary>
internal static class XorKernel
{
    /// <summary><paramref name="destination"/>[i] = <paramref name="left"/>[i] ^ <paramref name="right"/>[i].</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static void Xor(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right, Span<byte> destination)
    {
        if (left.Length != right.Length || destination.Length != left.Length)
        {
            throw new ArgumentException("XOR operands and destination must have the same length.");
        }
        ref byte l = ref MemoryMarshal.GetReference(left);
        ref byte r = ref MemoryMarshal.GetReference(right);
        ref byte d = ref MemoryMarshal.GetReference(destination);
        nuint length = (nuint)left.Length;
        nuint i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector512<byte>.Count <= length; i += (nuint)Vector512<byte>.Count)
            {
                (Vector512.LoadUnsafe(ref l, i) ^ Vector512.LoadUnsafe(ref r, i)).StoreUnsafe(ref d, i);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector256<byte>.Count <= length; i += (nuint)Vector256<byte>.Count)
            {
                (Vector256.LoadUnsafe(ref l, i) ^ Vector256.LoadUnsafe(ref r, i)).StoreUnsafe(ref d, i);
            }
        }
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i + (nuint)Vector128<byte>.Count <= length; i += (nuint)Vector128<byte>.Count)
            {
                (Vector128.LoadUnsafe(ref l, i) ^ Vector128.LoadUnsafe(ref r, i)).StoreUnsafe(ref d, i);
            }
        }
        for (; i < length; i++)
        {
            Unsafe.Add(ref d, i) = (byte)(Unsafe.Add(ref l, i) ^ Unsafe.Add(ref r, i));
        }
    }

    /// <summary>The scalar twin of <see cref="Xor"/>, kept for tests and benchmarks.</summary>
    public static void XorScalar(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right, Span<byte> destination)
    {
        if (left.Length != right.Length || destination.Length != left.Length)
        {
            throw new ArgumentException("XOR operands and destination must have the same length.");
        }
        for (int i = 0; i < left.Length; i++)
        {
            destination[i] = (byte)(left[i] ^ right[i]);
        }
    }
}
