using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Safetensors;

public class TensorInfoTests
{
    [Fact]
    public void Equals_SameValuesDistinctShapeArrays_EqualWithSameHash()
    {
        var a = new TensorInfo("w", DType.BF16, [2, 3], 0, 12);
        var b = new TensorInfo("w", DType.BF16, [2, 3], 0, 12);

        Assert.Equal(a, b);
        Assert.True(a == b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
    }

    [Theory]
    [InlineData("v", DType.BF16, new long[] { 2, 3 }, 0, 12)]
    [InlineData("w", DType.F16, new long[] { 2, 3 }, 0, 12)]
    [InlineData("w", DType.BF16, new long[] { 3, 2 }, 0, 12)]
    [InlineData("w", DType.BF16, new long[] { 2, 3, 1 }, 0, 12)]
    [InlineData("w", DType.BF16, new long[] { 2, 3 }, 4, 16)]
    [InlineData("w", DType.BF16, new long[] { 2, 3 }, 0, 13)]
    internal void Equals_AnyFieldDiffers_NotEqual(string name, DType dtype, long[] shape, long begin, long end)
    {
        var a = new TensorInfo("w", DType.BF16, [2, 3], 0, 12);
        var b = new TensorInfo(name, dtype, shape, begin, end);

        Assert.NotEqual(a, b);
        Assert.False(a == b);
    }

    [Fact]
    public void Equals_ParsedTwiceFromSameHeader_Equal()
    {
        SafetensorsHeader header = SafetensorsHeader.Create([("w", DType.F32, [4, 4]), ("s", DType.I64, [])]);

        SafetensorsHeader again = SafetensorsHeader.Parse(header.HeaderBytes, header.DataLength, "x");

        Assert.Equal(header.Tensors, again.Tensors);
    }

    [Theory]
    [InlineData(new long[0], 1)]
    [InlineData(new long[] { 0 }, 0)]
    [InlineData(new long[] { 3, 0, 5 }, 0)]
    [InlineData(new long[] { 2, 3, 4 }, 24)]
    public void ElementCount_Shape_ProductOfDimensions(long[] shape, long expected)
    {
        Assert.Equal(expected, new TensorInfo("t", DType.U8, shape, 0, expected).ElementCount);
    }

    [Fact]
    public void Length_BeginEnd_Difference()
    {
        Assert.Equal(7, new TensorInfo("t", DType.U8, [7], 10, 17).Length);
    }

    [Fact]
    public void SameLayoutAs_ComparesDTypeAndShapeOnly()
    {
        var a = new TensorInfo("a", DType.BF16, [2, 3], 0, 12);

        Assert.True(a.SameLayoutAs(new TensorInfo("b", DType.BF16, [2, 3], 12, 24)));
        Assert.False(a.SameLayoutAs(new TensorInfo("a", DType.F16, [2, 3], 0, 12)));
        Assert.False(a.SameLayoutAs(new TensorInfo("a", DType.BF16, [3, 2], 0, 12)));
        Assert.False(a.SameLayoutAs(new TensorInfo("a", DType.BF16, [6], 0, 12)));
    }
}
