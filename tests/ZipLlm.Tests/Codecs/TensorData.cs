using System.Buffers.Binary;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Codecs;

/// <summary>Random tensor bytes with the statistics of real weights, and finetune-like perturbations of them.</summary>
internal static class TensorData
{
    /// <summary>About <paramref name="length"/> bytes of <paramref name="dtype"/> data (exactly that many).</summary>
    public static byte[] Sample(Random random, DType dtype, int length)
    {
        byte[] bytes = new byte[length];
        switch (dtype)
        {
            case DType.BF16:
                for (int i = 0; i + 1 < length; i += 2)
                {
                    float w = Gaussian(random) * 0.02f;
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i), (ushort)(BitConverter.SingleToUInt32Bits(w) >> 16));
                }
                break;
            case DType.F16:
                for (int i = 0; i + 1 < length; i += 2)
                {
                    BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i), (Half)(Gaussian(random) * 0.02f));
                }
                break;
            case DType.F32:
                for (int i = 0; i + 3 < length; i += 4)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i), Gaussian(random) * 0.02f);
                }
                break;
            default:
                random.NextBytes(bytes);
                break;
        }
        return bytes;
    }

    /// <summary>A copy of <paramref name="tensor"/> with low bits of some elements changed, as finetuning does.</summary>
    public static byte[] Perturb(Random random, byte[] tensor, DType dtype)
    {
        byte[] copy = (byte[])tensor.Clone();
        int width = Math.Max(1, dtype.BitSize() / 8);
        for (int i = 0; i + width <= copy.Length; i += width)
        {
            if (random.Next(4) == 0)
            {
                copy[i] ^= (byte)random.Next(1, 8);
            }
        }
        return copy;
    }

    private static float Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
