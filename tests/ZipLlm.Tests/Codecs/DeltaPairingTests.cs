using ZipLlm.Codecs;
using ZipLlm.Safetensors;
using static ZipLlm.Codecs.DeltaPairing;

namespace ZipLlm.Tests.Codecs;

public class DeltaPairingTests
{
    [Theory]
    [InlineData(Rule.ExactShape)]
    [InlineData(Rule.Store)]
    internal void Pair_SameNameDTypeAndShape_SameShapeUnderEitherRule(Rule rule)
    {
        Assert.Equal(Fit.SameShape, Pair("w", DType.BF16, [4096, 11008], "w", DType.BF16, [4096, 11008], rule));
        Assert.Equal(Fit.SameShape, Pair("b", DType.F32, [7], "b", DType.F32, [7], rule));
    }

    [Theory]
    [InlineData(32002, 32000)]
    [InlineData(32000, 32002)]
    public void Pair_FirstDimensionResized_ResizedRowsOnlyWhenAllowed(long rows, long baseRows)
    {
        Assert.Equal(Fit.ResizedRows, Pair("embed", DType.BF16, [rows, 64], "embed", DType.BF16, [baseRows, 64], Rule.Store));
        Assert.Equal(Fit.None, Pair("embed", DType.BF16, [rows, 64], "embed", DType.BF16, [baseRows, 64], Rule.ExactShape));
    }

    [Fact]
    public void Pair_RankOneResized_ResizedRowsOnlyWhenAllowed()
    {
        Assert.Equal(Fit.ResizedRows, Pair("bias", DType.F16, [10], "bias", DType.F16, [12], Rule.Store));
        Assert.Equal(Fit.None, Pair("bias", DType.F16, [10], "bias", DType.F16, [12], Rule.ExactShape));
    }

    [Theory]
    [InlineData(Rule.ExactShape)]
    [InlineData(Rule.Store)]
    internal void Pair_OtherDimensionDiffers_None(Rule rule)
    {
        Assert.Equal(Fit.None, Pair("w", DType.BF16, [64, 129], "w", DType.BF16, [64, 128], rule));
        Assert.Equal(Fit.None, Pair("w", DType.BF16, [65, 64, 3], "w", DType.BF16, [64, 64, 4], rule));
        // Transposed: same element count, rows no longer line up.
        Assert.Equal(Fit.None, Pair("w", DType.BF16, [3, 2], "w", DType.BF16, [2, 3], rule));
    }

    [Theory]
    [InlineData(Rule.ExactShape)]
    [InlineData(Rule.Store)]
    internal void Pair_RankDiffers_None(Rule rule)
    {
        Assert.Equal(Fit.None, Pair("w", DType.BF16, [6], "w", DType.BF16, [2, 3], rule));
        Assert.Equal(Fit.None, Pair("w", DType.BF16, [1, 6], "w", DType.BF16, [6], rule));
        Assert.Equal(Fit.None, Pair("w", DType.BF16, [], "w", DType.BF16, [1], rule));
    }

    [Theory]
    [InlineData(Rule.ExactShape)]
    [InlineData(Rule.Store)]
    internal void Pair_DTypesThatDoNotConvert_None(Rule rule)
    {
        // BF16 with F16 converts under the store rule (Pair_Bf16WithF16_PairsOnlyUnderTheStoreRule_ConvertingTheBase); nothing else does.
        Assert.Equal(Fit.None, Pair("w", DType.F16, [4, 4], "w", DType.F32, [4, 4], rule));
        Assert.Equal(Fit.None, Pair("w", DType.I16, [4, 4], "w", DType.U16, [4, 4], rule));
        Assert.Equal(Fit.None, Pair("w", DType.F32, [5, 4], "w", DType.BF16, [4, 4], rule));
    }

    [Theory]
    [InlineData(Rule.ExactShape)]
    [InlineData(Rule.Store)]
    internal void Pair_NameDiffers_None(Rule rule)
    {
        Assert.Equal(Fit.None, Pair("w", DType.BF16, [4], "W", DType.BF16, [4], rule));
        Assert.Equal(Fit.None, Pair("layers.0.w", DType.BF16, [4], "layers.1.w", DType.BF16, [4], rule));
    }

    [Theory]
    [InlineData(Rule.ExactShape)]
    [InlineData(Rule.Store)]
    internal void Pair_Scalars_SameShape(Rule rule)
    {
        Assert.Equal(Fit.SameShape, Pair("scale", DType.F32, [], "scale", DType.F32, [], rule));
        Assert.Equal(Fit.None, Pair("scale", DType.F32, [], "scale", DType.F64, [], rule));
    }

    [Fact]
    public void Pair_EmptyTensors_PairByShapeLikeAnyOther()
    {
        Assert.Equal(Fit.SameShape, Pair("e", DType.BF16, [0], "e", DType.BF16, [0], Rule.ExactShape));
        Assert.Equal(Fit.SameShape, Pair("e", DType.BF16, [0, 8], "e", DType.BF16, [0, 8], Rule.Store));
        Assert.Equal(Fit.ResizedRows, Pair("e", DType.BF16, [0, 8], "e", DType.BF16, [3, 8], Rule.Store));
        Assert.Equal(Fit.ResizedRows, Pair("e", DType.BF16, [3, 8], "e", DType.BF16, [0, 8], Rule.Store));
        Assert.Equal(Fit.None, Pair("e", DType.BF16, [0, 8], "e", DType.BF16, [3, 8], Rule.ExactShape));
        Assert.Equal(Fit.None, Pair("e", DType.BF16, [8, 0], "e", DType.BF16, [8, 3], Rule.Store));
    }

    [Fact]
    public void Pair_TensorInfos_ComparesNameDTypeAndShapeNotOffsets()
    {
        var tensor = new TensorInfo("w", DType.BF16, [3, 2], 100, 112);
        Assert.Equal(Fit.SameShape, Pair(tensor, new TensorInfo("w", DType.BF16, [3, 2], 0, 12), Rule.ExactShape));
        Assert.Equal(Fit.ResizedRows, Pair(tensor, new TensorInfo("w", DType.BF16, [2, 2], 0, 8), Rule.Store));
        Assert.Equal(Fit.None, Pair(tensor, new TensorInfo("v", DType.BF16, [3, 2], 0, 12), Rule.ExactShape));
    }

    [Fact]
    public void Pair_Bf16WithF16_PairsOnlyUnderTheStoreRule_ConvertingTheBase()
    {
        Assert.Equal(Fit.SameShape, Pair("w", DType.F16, [8, 4], "w", DType.BF16, [8, 4], Rule.Store));
        Assert.Equal(Fit.ResizedRows, Pair("w", DType.BF16, [9, 4], "w", DType.F16, [8, 4], Rule.Store));
        Assert.Equal(Fit.None, Pair("w", DType.F16, [8, 4], "w", DType.BF16, [8, 4], Rule.ExactShape));
        Assert.Equal(Fit.None, Pair("w", DType.F32, [8, 4], "w", DType.BF16, [8, 4], Rule.Store));
        Assert.Equal(BaseConversion.Bf16ToF16, ConversionFor(DType.F16, DType.BF16));
        Assert.Equal(BaseConversion.F16ToBf16, ConversionFor(DType.BF16, DType.F16));
        Assert.Equal(BaseConversion.None, ConversionFor(DType.BF16, DType.BF16));
        Assert.Equal(BaseConversion.None, ConversionFor(DType.F32, DType.BF16));
    }

    [Fact]
    public void Pair_UnknownRule_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Pair("w", DType.BF16, [1], "w", DType.BF16, [1], (Rule)7));
}
