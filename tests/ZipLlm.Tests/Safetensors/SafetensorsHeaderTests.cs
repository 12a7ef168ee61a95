using System.Text;
using ZipLlm.Safetensors;

namespace ZipLlm.Tests.Safetensors;

public class SafetensorsHeaderTests
{
    [Fact]
    public void Create_ThenParse_KeepsTensorsInOrder()
    {
        var header = SafetensorsHeader.Create([("b", DType.BF16, [2, 3]), ("a", DType.F32, [])]);
        var parsed = SafetensorsHeader.Parse(header.HeaderBytes, header.DataLength, "x");
        Assert.Equal(["b", "a"], parsed.Tensors.Select(t => t.Name));
        Assert.Equal(12 + 4, parsed.DataLength);
        Assert.Equal(0, header.HeaderBytes.Length % SafetensorsFormat.HeaderAlignment);
    }

    [Fact]
    public void Create_Tensors_PackedEndToEndInGivenOrder()
    {
        SafetensorsHeader header = SafetensorsHeader.Create([
            ("x", DType.U8, [3]),
            ("e", DType.F32, [0]),
            ("y", DType.F4, [2, 5]),
            ("z", DType.C64, [2]),
        ]);

        Assert.Equal(
            [("x", 0L, 3L), ("e", 3L, 3L), ("y", 3L, 8L), ("z", 8L, 24L)],
            header.Tensors.Select(t => (t.Name, t.Begin, t.End)));
        Assert.Equal(24, header.DataLength);
        Assert.Equal(header.DataOffset + 24, header.FileLength);
    }

    [Fact]
    public void Create_Header_IsReferenceLayoutPaddedWithSpaces()
    {
        SafetensorsHeader header = SafetensorsHeader.Create([("w", DType.F16, [2])], new Dictionary<string, string> { ["format"] = "pt" });

        string json = Encoding.UTF8.GetString(header.HeaderBytes);
        string expected = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
        Assert.Equal(expected, json.TrimEnd(' '));
        Assert.Equal(0, header.HeaderBytes.Length % 8);
        Assert.InRange(header.HeaderBytes.Length - expected.Length, 0, 7);
        Assert.Equal("pt", header.Metadata!["format"]);
    }

    [Fact]
    public void Create_NoTensors_IsEmptyObjectPadded()
    {
        SafetensorsHeader header = SafetensorsHeader.Create([]);

        Assert.Equal("{}      ", Encoding.UTF8.GetString(header.HeaderBytes));
        Assert.Empty(header.Tensors);
        Assert.Null(header.Metadata);
        Assert.Equal(16, header.FileLength);
    }

    [Theory]
    [InlineData("w", "w")]
    [InlineData(SafetensorsFormat.MetadataKey, "a")]
    [InlineData("a", SafetensorsFormat.MetadataKey)]
    public void Create_RepeatedOrReservedName_ThrowsArgumentException(string first, string second)
    {
        Assert.Throws<ArgumentException>(() => SafetensorsHeader.Create([(first, DType.U8, [1]), (second, DType.U8, [1])]));
    }

    [Fact]
    public void Create_NegativeDimension_ThrowsArgumentOutOfRange()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SafetensorsHeader.Create([("w", DType.U8, [2, -1])]));
    }

    [Theory]
    [InlineData(DType.F4, new long[] { 3 })]
    [InlineData(DType.F6_E2M3, new long[] { 2, 3 })]
    internal void Create_SubByteDtypeEndingMidByte_ThrowsArgumentException(DType dtype, long[] shape)
    {
        Assert.Throws<ArgumentException>(() => SafetensorsHeader.Create([("w", dtype, shape)]));
    }

    [Theory]
    [InlineData(new long[] { 1L << 40, 1L << 40 })]
    [InlineData(new long[] { 1L << 60 })]
    [InlineData(new long[] { long.MaxValue })]
    public void Create_ShapeTooLarge_ThrowsArgumentException(long[] shape)
    {
        Assert.ThrowsAny<ArgumentException>(() => SafetensorsHeader.Create([("w", DType.F64, shape)]));
    }

    [Fact]
    public void Create_RankOverLimit_ThrowsArgumentException()
    {
        long[] shape = [.. Enumerable.Repeat(1L, SafetensorsFormat.MaxRank + 1)];

        Assert.ThrowsAny<ArgumentException>(() => SafetensorsHeader.Create([("w", DType.U8, shape)]));
    }

    [Fact]
    public void Create_InvalidUtf16Name_ThrowsArgumentException()
    {
        Assert.ThrowsAny<ArgumentException>(() => SafetensorsHeader.Create([("bad\ud800", DType.U8, [1])]));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Create_InvalidUtf16Metadata_ThrowsArgumentException(bool inKey)
    {
        // Built in code: attribute arguments are stored as UTF-8 and would lose the lone surrogate.
        string bad = "k" + (char)0xDC00;
        var metadata = new Dictionary<string, string> { [inKey ? bad : "k"] = inKey ? "v" : bad };

        Assert.ThrowsAny<ArgumentException>(() => SafetensorsHeader.Create([("w", DType.U8, [1])], metadata));
    }

    [Fact]
    public void Create_NullMetadataValue_ThrowsArgumentException()
    {
        var metadata = new Dictionary<string, string> { ["k"] = null! };

        Assert.ThrowsAny<ArgumentException>(() => SafetensorsHeader.Create([("w", DType.U8, [1])], metadata));
    }

    [Fact]
    public void Create_NamesNeedingEscapes_ParseBackToSameNames()
    {
        string[] names = ["q\"uote", "back\\slash", "ctl\u0001\n", "<html>&'+", "caf\u00e9", "\U0001F600", "模型"];

        SafetensorsHeader header = SafetensorsHeader.Create(names.Select(n => (n, DType.U8, new long[] { 1 })));
        SafetensorsHeader parsed = SafetensorsHeader.Parse(header.HeaderBytes, header.DataLength, "x");

        Assert.Equal(names, parsed.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void Parse_DataLengthLongerThanTensors_ThrowsInvalidDataNamingFile()
    {
        SafetensorsHeader header = SafetensorsHeader.Create([("w", DType.U8, [4])]);

        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsHeader.Parse(header.HeaderBytes, 5, "shard.safetensors"));

        Assert.Contains("shard.safetensors", ex.Message);
        Assert.Contains("1 trailing bytes", ex.Message);
    }
}
