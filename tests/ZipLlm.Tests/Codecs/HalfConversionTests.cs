using ZipLlm.Codecs;
using ZipLlm.Codecs.Kernels;

namespace ZipLlm.Tests.Codecs;

public class HalfConversionTests
{
    [Fact]
    public void Bf16ToF16_EveryWord_MatchesIeeeRoundingThroughSingle_AndKeepsNan()
    {
        for (int w = 0; w < 65536; w++)
        {
            float value = BitConverter.UInt32BitsToSingle((uint)w << 16);
            ushort converted = HalfConversion.Bf16ToF16((ushort)w);
            Half half = BitConverter.UInt16BitsToHalf(converted);
            if (float.IsNaN(value))
            {
                Assert.True(Half.IsNaN(half), $"0x{w:X4} is NaN but became 0x{converted:X4}");
                continue;
            }
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)value), converted);
        }
    }

    [Fact]
    public void F16ToBf16_EveryWord_MatchesRoundToNearestEvenOfItsValue_AndKeepsNan()
    {
        for (int w = 0; w < 65536; w++)
        {
            Half half = BitConverter.UInt16BitsToHalf((ushort)w);
            ushort converted = HalfConversion.F16ToBf16((ushort)w);
            float back = BitConverter.UInt32BitsToSingle((uint)converted << 16);
            if (Half.IsNaN(half))
            {
                Assert.True(float.IsNaN(back), $"0x{w:X4} is NaN but became 0x{converted:X4}");
                continue;
            }
            uint bits = BitConverter.SingleToUInt32Bits((float)half);
            ushort expected = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
            Assert.Equal(expected, converted);
        }
    }

    [Fact]
    public void ConvertInPlace_ConvertsWholeWordsAndLeavesAnOddByte()
    {
        byte[] words = [0x80, 0x3F, 0x00, 0xC0, 0x55]; // BF16 1.0, -2.0, and a stray byte
        HalfConversion.ConvertInPlace(words, BaseConversion.Bf16ToF16);
        Assert.Equal(new byte[] { 0x00, 0x3C, 0x00, 0xC0, 0x55 }, words);
        HalfConversion.ConvertInPlace(words, BaseConversion.F16ToBf16);
        Assert.Equal(new byte[] { 0x80, 0x3F, 0x00, 0xC0, 0x55 }, words);
    }
}
