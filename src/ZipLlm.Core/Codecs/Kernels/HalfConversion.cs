using System.Numerics;
using System.Runtime.InteropServices;

namespace ZipLlm.Codecs.Kernels;

/// <summary>
/// Converts 16-bit float words between BF16 and F16, as a delta's base is converted to its tensor's dtype
/// (<see cref="BaseConversion"/>). Written in integer arithmetic, not through <see cref="Half"/> or a CPU instruction,
/// so that every machine and runtime converts every word, NaN payloads included, the same way: the encoder and the
/// decoder of a delta must see the same base. Round to nearest even, overflow to infinity, NaN stays NaN.
/// </summary>
internal static class HalfConversion
{
    private static readonly Lazy<ushort[]> s_bf16ToF16 = new(() => Table(Bf16ToF16));
    private static readonly Lazy<ushort[]> s_f16ToBf16 = new(() => Table(F16ToBf16));

    /// <summary>Converts little-endian words in place by <paramref name="conversion"/>; <see cref="BaseConversion.None"/> leaves them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The conversion is not a known one.</exception>
    public static void ConvertInPlace(Span<byte> words, BaseConversion conversion)
    {
        ushort[] table = conversion switch
        {
            BaseConversion.None => [],
            BaseConversion.Bf16ToF16 => s_bf16ToF16.Value,
            BaseConversion.F16ToBf16 => s_f16ToBf16.Value,
            _ => throw new ArgumentOutOfRangeException(nameof(conversion), conversion, "Unknown base conversion."),
        };
        if (table.Length == 0)
        {
            return;
        }
        Span<ushort> w = MemoryMarshal.Cast<byte, ushort>(words[..(words.Length & ~1)]);
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = table[w[i]];
        }
    }

    /// <summary>One BF16 word as F16: exact for normal F16 magnitudes, rounded to nearest even below them.</summary>
    public static ushort Bf16ToF16(ushort bf16)
    {
        int sign = bf16 & 0x8000, exponent = (bf16 >> 7) & 0xFF, mantissa = bf16 & 0x7F;
        if (exponent == 0xFF)
        {
            return (ushort)(sign | 0x7C00 | (mantissa << 3));
        }
        int e = exponent - 127 + 15;
        if (e >= 31)
        {
            return (ushort)(sign | 0x7C00);
        }
        if (e >= 1)
        {
            return (ushort)(sign | e << 10 | mantissa << 3);
        }
        if (exponent == 0)
        {
            return (ushort)sign; // BF16 zero or subnormal: far below F16's smallest subnormal
        }
        // A F16 subnormal counts units of 2^-24; the value is (128 + mantissa) * 2^(exponent - 134).
        int shift = 110 - exponent;
        int significand = 128 + mantissa;
        if (shift <= 0)
        {
            return (ushort)(sign | significand << -shift);
        }
        return (ushort)(sign | RoundShift(significand, shift));
    }

    /// <summary>One F16 word as BF16, rounded to nearest even (BF16 has 7 mantissa bits to F16's 10).</summary>
    public static ushort F16ToBf16(ushort f16)
    {
        int sign = f16 & 0x8000, exponent = (f16 >> 10) & 0x1F, mantissa = f16 & 0x3FF;
        if (exponent == 0x1F)
        {
            int payload = mantissa >> 3;
            return (ushort)(sign | 0x7F80 | (mantissa != 0 && payload == 0 ? 1 : payload));
        }
        if (exponent == 0)
        {
            if (mantissa == 0)
            {
                return (ushort)sign;
            }
            // Normalize the subnormal: its leading bit p gives 2^(p - 24).
            int p = 31 - BitOperations.LeadingZeroCount((uint)mantissa);
            int fraction = mantissa - (1 << p);
            int bits = (p + 103) << 7;
            return (ushort)(sign | (p <= 7 ? bits | fraction << (7 - p) : bits + RoundShift(fraction, p - 7)));
        }
        // The rounding carry may ripple into the exponent, which is what rounding to the next binade means.
        return (ushort)(sign | (((exponent + 112) << 7 | mantissa >> 3) + RoundUp(mantissa, 3)));
    }

    /// <summary><paramref name="value"/> shifted right by <paramref name="shift"/>, rounded to nearest even.</summary>
    private static int RoundShift(int value, int shift)
    {
        if (shift >= 31)
        {
            return 0;
        }
        return (value >> shift) + RoundUp(value, shift);
    }

    /// <summary>1 when dropping the low <paramref name="shift"/> bits of <paramref name="value"/> should round up (to nearest, ties to even).</summary>
    private static int RoundUp(int value, int shift)
    {
        int half = 1 << (shift - 1), rest = value & ((1 << shift) - 1);
        return rest > half || (rest == half && ((value >> shift) & 1) == 1) ? 1 : 0;
    }

    private static ushort[] Table(Func<ushort, ushort> convert)
    {
        var table = new ushort[65536];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = convert((ushort)i);
        }
        return table;
    }
}
