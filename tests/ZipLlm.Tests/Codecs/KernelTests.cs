using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Tests.Codecs;

public class KernelTests
{
    // 0, 1, around each vector width (16, 32, 64 bytes of stream = 2x that in words) and odd lengths.
    public static TheoryData<int> Sizes => new() { 0, 1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 1000, 4099 };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Xor_AnyLength_MatchesScalar(int length)
    {
        var random = new Random(length);
        byte[] a = RandomBytes(random, length), b = RandomBytes(random, length);
        byte[] vector = new byte[length], scalar = new byte[length];
        XorKernel.Xor(a, b, vector);
        XorKernel.XorScalar(a, b, scalar);
        Assert.Equal(scalar, vector);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal((byte)(a[i] ^ b[i]), vector[i]);
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Bf16Split_AnyWordCount_MatchesScalarAndDefinition(int words)
    {
        var random = new Random(words + 1000);
        byte[] src = RandomBytes(random, 2 * words), baseBytes = RandomBytes(random, 2 * words);
        foreach (bool xor in new[] { false, true })
        {
            ReadOnlySpan<byte> with = xor ? baseBytes : default;
            byte[] exp = new byte[words], sm = new byte[words], exp2 = new byte[words], sm2 = new byte[words];
            Bf16Split.Split(src, with, exp, sm);
            Bf16Split.SplitScalar(src, with, exp2, sm2);
            Assert.Equal(exp2, exp);
            Assert.Equal(sm2, sm);
            for (int i = 0; i < words; i++)
            {
                int w = src[2 * i] | (src[2 * i + 1] << 8);
                if (xor)
                {
                    w ^= baseBytes[2 * i] | (baseBytes[2 * i + 1] << 8);
                }
                Assert.Equal((byte)((w >> 7) & 0xFF), exp[i]);
                Assert.Equal((byte)((w >> 15) << 7 | (w & 0x7F)), sm[i]);
            }

            byte[] merged = new byte[2 * words], merged2 = new byte[2 * words];
            Bf16Split.Merge(exp, sm, with, merged);
            Bf16Split.MergeScalar(exp, sm, with, merged2);
            Assert.Equal(src, merged);
            Assert.Equal(src, merged2);
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void F32Split_AnyWordCount_RoundTripsAndPutsExponentFirst(int words)
    {
        var random = new Random(words + 2000);
        byte[] src = RandomBytes(random, 4 * words), baseBytes = RandomBytes(random, 4 * words);
        byte[][] streams = [new byte[words], new byte[words], new byte[words], new byte[words]];
        F32Split.Split(src, baseBytes, streams[0], streams[1], streams[2], streams[3]);
        for (int i = 0; i < words; i++)
        {
            uint w = BitConverter.ToUInt32(src, 4 * i) ^ BitConverter.ToUInt32(baseBytes, 4 * i);
            Assert.Equal((byte)(w >> 23), streams[0][i]);
            Assert.Equal((byte)w, streams[3][i]);
        }
        byte[] merged = new byte[4 * words];
        F32Split.Merge(streams[0], streams[1], streams[2], streams[3], baseBytes, merged);
        Assert.Equal(src, merged);
    }

    [Fact]
    public void Bf16Split_MismatchedLengths_Throws()
    {
        Assert.Throws<ArgumentException>(() => Bf16Split.Split(new byte[3], default, new byte[1], new byte[1]));
        Assert.Throws<ArgumentException>(() => Bf16Split.Split(new byte[4], default, new byte[1], new byte[2]));
        Assert.Throws<ArgumentException>(() => Bf16Split.Merge(new byte[2], new byte[2], new byte[2], new byte[4]));
        Assert.Throws<ArgumentException>(() => XorKernel.Xor(new byte[2], new byte[3], new byte[2]));
    }

    internal static byte[] RandomBytes(Random random, int length)
    {
        byte[] bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
