using System.Runtime.CompilerServices;

namespace ZipLlm.Synthetic;

/// <summary>Conversions between F32 and the 16-bit float formats, as PyTorch does them.</summary>
internal static class FloatBits
{
    /// <summary>
    /// F32 to BF16 by round-to-nearest-even on the dropped 16 bits (what <c>tensor.to(torch.bfloat16)</c>
    /// does); NaN stays a quiet NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000)
        {
            return (ushort)((bits >> 16) | 0x0040);
        }
        uint roundingBias = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + roundingBias) >> 16);
    }

    /// <summary>BF16 to F32 (exact: BF16 is the top half of an F32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromBf16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>F32 to IEEE half, round-to-nearest-even.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToF16(float value) => BitConverter.HalfToUInt16Bits((Half)value);
}
