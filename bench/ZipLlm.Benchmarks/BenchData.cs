using System.Buffers.Binary;

namespace ZipLlm.Benchmarks;

/// <summary>Realistic BF16 weights and a finetune of them, generated reproducibly.</summary>
internal static class BenchData
{
    /// <summary>
    /// <paramref name="bytes"/> of BF16 weights drawn from N(0, 0.02) (the usual initialization scale of LLM
    /// linear layers), and a finetune: each weight scaled by (1 + N(0, 0.002)), which moves most BF16 words by
    /// an ulp or two (low mantissa bits) and leaves the exponent alone, as a short finetune does.
    /// </summary>
    public static (byte[] Base, byte[] Finetune) Bf16Pair(int bytes, int seed = 42)
    {
        var random = new Random(seed);
        byte[] @base = new byte[bytes], finetune = new byte[bytes];
        for (int i = 0; i + 1 < bytes; i += 2)
        {
            float w = Gaussian(random) * 0.02f;
            float f = w * (1 + Gaussian(random) * 0.002f);
            BinaryPrimitives.WriteUInt16LittleEndian(@base.AsSpan(i), ToBf16(w));
            BinaryPrimitives.WriteUInt16LittleEndian(finetune.AsSpan(i), ToBf16(f));
        }
        return (@base, finetune);
    }

    /// <summary>Uniformly random bytes (the worst case for the kernels' branch-free paths is the same as any other).</summary>
    public static byte[] RandomBytes(int length, int seed)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    // Round to nearest even, as torch does when casting to bfloat16.
    private static ushort ToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        bits += 0x7FFF + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }

    private static float Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
