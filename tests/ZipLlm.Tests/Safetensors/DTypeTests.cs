using System.Text;
using ZipLlm.Safetensors;
using static ZipLlm.Tests.Safetensors.SafetensorsBytes;

namespace ZipLlm.Tests.Safetensors;

public class DTypeTests
{
    [Fact]
    public void TryParse_EveryName_ParsesToItsDType()
    {
        foreach (DType dtype in Enum.GetValues<DType>())
        {
            Assert.True(DTypes.TryParse(Encoding.ASCII.GetBytes(dtype.Name()), out DType parsed), dtype.Name());
            Assert.Equal(dtype, parsed);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("bf16")]
    [InlineData("Bf16")]
    [InlineData("BF1")]
    [InlineData("BF160")]
    [InlineData(" BF16")]
    [InlineData("F128")]
    [InlineData("F8")]
    [InlineData("F6")]
    [InlineData("0")]
    public void TryParse_UnknownName_ReturnsFalse(string name)
    {
        Assert.False(DTypes.TryParse(Encoding.UTF8.GetBytes(name), out _));
    }

    [Fact]
    public void BitSize_MatchesIndependentTable()
    {
        foreach (DType dtype in Enum.GetValues<DType>())
        {
            Assert.Equal(BitsByName[dtype.Name()], dtype.BitSize());
        }
    }

    [Fact]
    public void BitSize_UndefinedValue_ThrowsArgumentOutOfRange()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ((DType)999).BitSize());
    }

    [Theory]
    [InlineData(DType.F4, 0, 0)]
    [InlineData(DType.F4, 1, -1)]
    [InlineData(DType.F4, 2, 1)]
    [InlineData(DType.F4, 7, -1)]
    [InlineData(DType.F6_E2M3, 1, -1)]
    [InlineData(DType.F6_E2M3, 2, -1)]
    [InlineData(DType.F6_E3M2, 3, -1)]
    [InlineData(DType.F6_E3M2, 4, 3)]
    [InlineData(DType.F6_E3M2, 8, 6)]
    [InlineData(DType.U8, 7, 7)]
    [InlineData(DType.BF16, 3, 6)]
    [InlineData(DType.C64, 1, 8)]
    [InlineData(DType.F64, 0, 0)]
    internal void ByteCount_ElementCount_BytesOrMinusOneWhenMidByte(DType dtype, long elements, long expected)
    {
        Assert.Equal(expected, dtype.ByteCount(elements));
    }

    [Fact]
    public void ByteCount_CountTooLargeForBits_ThrowsOverflow()
    {
        Assert.Throws<OverflowException>(() => DType.F64.ByteCount(long.MaxValue / 32));
    }
}
