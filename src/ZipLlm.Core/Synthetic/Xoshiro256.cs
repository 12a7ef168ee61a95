using System.Runtime.CompilerServices;

namespace ZipLlm.Synthetic;

/// <summary>
/// xoshiro256** (Blackman and Vigna): a fast, high-quality 64-bit generator. Its output is fully
/// specified, so a seed gives the same numbers on every machine and runtime.
/// </summary>
internal struct Xoshiro256
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Seeds the four state words from SplitMix64, as the authors recommend (never all zero).</summary>
    public Xoshiro256(ulong seed)
    {
        _s0 = SplitMix64(ref seed);
        _s1 = SplitMix64(ref seed);
        _s2 = SplitMix64(ref seed);
        _s3 = SplitMix64(ref seed);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Next()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>
    /// An approximately standard normal sample: the sum of four 16-bit uniforms from one 64-bit
    /// output (Irwin-Hall, n = 4), centred and scaled to unit variance. Tails stop at ±3.46σ, which
    /// is close enough to trained weights for storage tests and needs no log, sqrt or trig.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float NextNormal()
    {
        ulong r = Next();
        int sum = (int)(r & 0xFFFF) + (int)((r >> 16) & 0xFFFF) + (int)((r >> 32) & 0xFFFF) + (int)(r >> 48);
        // Mean of the sum is 4 * 32767.5; its standard deviation is 65536 / sqrt(3) (to within 1e-9).
        return (sum - 131070) * NormalScale;
    }

    private const float NormalScale = 1.7320508075688772f / 65536f;

    /// <summary>SplitMix64: mixes a 64-bit counter into a well-distributed value.</summary>
    public static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Combines key parts into one seed, order-sensitive.</summary>
    public static ulong Key(ulong a, ulong b, ulong c, ulong d)
    {
        ulong state = a;
        ulong h = SplitMix64(ref state) ^ b;
        state = h;
        h = SplitMix64(ref state) ^ c;
        state = h;
        h = SplitMix64(ref state) ^ d;
        state = h;
        return SplitMix64(ref state);
    }
}
