using System.Text;
using ZipLlm.Safetensors;
using ZipLlm.Tests.TestSupport;
using static ZipLlm.Tests.Safetensors.SafetensorsBytes;

namespace ZipLlm.Tests.Safetensors;

/// <summary>
/// Valid files, built by hand, must be accepted and come back byte for byte: header via
/// <see cref="SafetensorsHeader.WriteTo"/> plus the data, and every tensor via
/// <see cref="SafetensorsFile.ReadTensor"/>.
/// </summary>
public class SafetensorsRoundTripTests
{
    private sealed record Expected(string Name, string DType, long[] Shape, long Begin, long End);

    /// <summary>
    /// Reads <paramref name="file"/>, checks the parsed tensors against <paramref name="expected"/>
    /// (given in data order), rewrites the file and reads every tensor back from disk.
    /// </summary>
    private static SafetensorsHeader AssertRoundTrip(byte[] file, params Expected[] expected)
    {
        SafetensorsHeader header = Read(file);
        int headerLength = file.Length - 8 - (int)header.DataLength;

        Assert.Equal(file.Length, header.FileLength);
        Assert.Equal(file[8..(8 + headerLength)], header.HeaderBytes);
        Assert.Equal(8 + headerLength, header.DataOffset);
        Assert.Equal(expected.Length, header.Tensors.Count);
        for (int i = 0; i < expected.Length; i++)
        {
            TensorInfo t = header.Tensors[i];
            Assert.Equal(expected[i].Name, t.Name);
            Assert.Equal(expected[i].DType, t.DType.Name());
            Assert.Equal(expected[i].Shape, t.Shape);
            Assert.Equal(expected[i].Begin, t.Begin);
            Assert.Equal(expected[i].End, t.End);
        }

        Assert.Equal(file, Rewrite(header, file.AsSpan((int)header.DataOffset)));

        using var dir = new TempDir();
        string path = WriteTemp(dir, FileName, file);
        using SafetensorsFile opened = SafetensorsFile.Open(path);
        Assert.Equal(file.Length, opened.Length);
        Assert.Equal(header.HeaderBytes, opened.Header.HeaderBytes);
        int dataStart = 8 + headerLength;
        for (int i = 0; i < expected.Length; i++)
        {
            var bytes = new byte[expected[i].End - expected[i].Begin];
            opened.ReadTensor(opened.Header.Tensors[i], 0, bytes);
            Assert.Equal(file[(dataStart + (int)expected[i].Begin)..(dataStart + (int)expected[i].End)], bytes);
        }
        return header;
    }

    private static long BytesOf(string dtype, long elements) => elements * BitsByName[dtype] / 8;

    [Fact]
    public void BitsTable_CoversEveryDType()
    {
        // The independent table used throughout these tests must stay in step with the enum.
        Assert.Equal(BitsByName.Keys.Order(StringComparer.Ordinal), Enum.GetValues<DType>().Select(d => d.Name()).Order(StringComparer.Ordinal));
        foreach (DType dtype in Enum.GetValues<DType>())
        {
            Assert.Equal(BitsByName[dtype.Name()], dtype.BitSize());
        }
    }

    [Fact]
    public void Read_EveryDTypeInItsOwnFile_RoundTrips()
    {
        foreach (DType dtype in Enum.GetValues<DType>())
        {
            string name = dtype.Name();
            long bytes = BytesOf(name, 8);
            byte[] file = File("{" + Entry("t", name, "[2,4]", 0, bytes) + "}", bytes);

            SafetensorsHeader header = AssertRoundTrip(file, new Expected("t", name, [2, 4], 0, bytes));
            Assert.Equal(dtype, header.Tensors[0].DType);
        }
    }

    [Fact]
    public void Read_EveryDTypeInOneFile_RoundTrips()
    {
        var entries = new List<string>();
        var expected = new List<Expected>();
        long offset = 0;
        foreach (DType dtype in Enum.GetValues<DType>())
        {
            string name = dtype.Name();
            long bytes = BytesOf(name, 24);
            entries.Add(Entry("w." + name, name, "[4,6]", offset, offset + bytes));
            expected.Add(new Expected("w." + name, name, [4, 6], offset, offset + bytes));
            offset += bytes;
            if (BitsByName[name] % 8 == 0)
            {
                long scalar = BitsByName[name] / 8;
                entries.Add(Entry("s." + name, name, "[]", offset, offset + scalar));
                expected.Add(new Expected("s." + name, name, [], offset, offset + scalar));
                offset += scalar;
            }
        }
        byte[] file = File("{" + string.Join(",", entries) + "}", offset);

        AssertRoundTrip(file, [.. expected]);
    }

    [Theory]
    [InlineData("F64", 8)]
    [InlineData("BF16", 2)]
    [InlineData("BOOL", 1)]
    [InlineData("C64", 8)]
    public void Read_ScalarTensor_RoundTrips(string dtype, long bytes)
    {
        byte[] file = File("{" + Entry("scalar", dtype, "[]", 0, bytes) + "}", bytes);

        SafetensorsHeader header = AssertRoundTrip(file, new Expected("scalar", dtype, [], 0, bytes));
        Assert.Equal(1, header.Tensors[0].ElementCount);
    }

    [Theory]
    [InlineData("[0]")]
    [InlineData("[3,0,2]")]
    [InlineData("[0,0]")]
    public void Read_EmptyTensorAlone_RoundTrips(string shape)
    {
        byte[] file = File("{" + Entry("empty", "F32", shape, 0, 0) + "}", 0);

        SafetensorsHeader header = AssertRoundTrip(file, new Expected("empty", "F32", ParseShape(shape), 0, 0));
        Assert.Equal(0, header.Tensors[0].ElementCount);
        Assert.Equal(0, header.DataLength);
    }

    [Fact]
    public void Read_EmptyTensorsAtStartMiddleAndEnd_RoundTrip()
    {
        string json = "{"
            + Entry("e0", "BF16", "[0,4]", 0, 0) + ","
            + Entry("a", "BF16", "[2]", 0, 4) + ","
            + Entry("e1", "F4", "[0]", 4, 4) + ","
            + Entry("b", "U8", "[3]", 4, 7) + ","
            + Entry("e2", "F64", "[5,0]", 7, 7) + "}";
        byte[] file = File(json, 7);

        AssertRoundTrip(file,
            new Expected("e0", "BF16", [0, 4], 0, 0),
            new Expected("a", "BF16", [2], 0, 4),
            new Expected("e1", "F4", [0], 4, 4),
            new Expected("b", "U8", [3], 4, 7),
            new Expected("e2", "F64", [5, 0], 7, 7));
    }

    [Fact]
    public void Read_OddByteLengths_RoundTrip()
    {
        string json = "{"
            + Entry("u8", "U8", "[7]", 0, 7) + ","
            + Entry("i8", "I8", "[3]", 7, 10) + ","
            + Entry("flag", "BOOL", "[1]", 10, 11) + ","
            + Entry("f16", "F16", "[3]", 11, 17) + ","
            + Entry("fp8", "F8_E4M3", "[5]", 17, 22) + ","
            + Entry("f6", "F6_E3M2", "[4]", 22, 25) + "}";
        byte[] file = File(json, 25);

        SafetensorsHeader header = AssertRoundTrip(file,
            new Expected("u8", "U8", [7], 0, 7),
            new Expected("i8", "I8", [3], 7, 10),
            new Expected("flag", "BOOL", [1], 10, 11),
            new Expected("f16", "F16", [3], 11, 17),
            new Expected("fp8", "F8_E4M3", [5], 17, 22),
            new Expected("f6", "F6_E3M2", [4], 22, 25));
        Assert.Equal(25, header.DataLength);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Read_MetadataAnywhereInHeader_RoundTripsAndIsExposed(int position)
    {
        var members = new List<string> { Entry("a", "F32", "[1]", 0, 4), Entry("b", "F32", "[1]", 4, 8) };
        members.Insert(position, "\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9 \\\"q\\\" \u00fc\",\"empty\":\"\"}");
        byte[] file = File("{" + string.Join(",", members) + "}", 8);

        SafetensorsHeader header = AssertRoundTrip(file, new Expected("a", "F32", [1], 0, 4), new Expected("b", "F32", [1], 4, 8));

        Assert.NotNull(header.Metadata);
        Assert.Equal(3, header.Metadata.Count);
        Assert.Equal("pt", header.Metadata["format"]);
        Assert.Equal("caf\u00e9 \"q\" \u00fc", header.Metadata["note"]);
        Assert.Equal("", header.Metadata["empty"]);
    }

    [Fact]
    public void Read_EmptyMetadata_RoundTripsAsEmptyMap()
    {
        byte[] file = File("{\"__metadata__\":{}," + Entry("a", "I32", "[2]", 0, 8) + "}", 8);

        SafetensorsHeader header = AssertRoundTrip(file, new Expected("a", "I32", [2], 0, 8));

        Assert.NotNull(header.Metadata);
        Assert.Empty(header.Metadata);
    }

    [Fact]
    public void Read_NoMetadata_MetadataIsNull()
    {
        SafetensorsHeader header = Read(File("{" + Entry("a", "I32", "[2]", 0, 8) + "}", 8));

        Assert.Null(header.Metadata);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(6)]
    [InlineData(13)]
    [InlineData(4096)]
    public void Read_HeaderPaddedWithTrailingSpaces_RoundTrips(int spaces)
    {
        string json = "{" + Entry("a", "F16", "[3]", 0, 6) + "}" + new string(' ', spaces);
        byte[] file = File(json, 6);

        SafetensorsHeader header = AssertRoundTrip(file, new Expected("a", "F16", [3], 0, 6));
        Assert.Equal(json.Length, header.HeaderBytes.Length);
    }

    [Fact]
    public void Read_HeaderPaddedWithOtherJsonWhitespace_RoundTrips()
    {
        string json = " \n{ \"a\" :\t{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}\r\n}\n\t ";
        byte[] file = File(json, 6);

        AssertRoundTrip(file, new Expected("a", "F16", [3], 0, 6));
    }

    [Fact]
    public void Read_JsonOrderDiffersFromDataOrder_TensorsInDataOrderAndRoundTrip()
    {
        string json = "{"
            + Entry("c", "F32", "[2]", 10, 18) + ","
            + Entry("a", "U8", "[4]", 0, 4) + ","
            + Entry("b", "BF16", "[3]", 4, 10) + "}";
        byte[] file = File(json, 18);

        AssertRoundTrip(file,
            new Expected("a", "U8", [4], 0, 4),
            new Expected("b", "BF16", [3], 4, 10),
            new Expected("c", "F32", [2], 10, 18));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{}      ")]
    [InlineData("{\"__metadata__\":{\"format\":\"pt\"}}")]
    [InlineData(" { } ")]
    public void Read_ZeroTensors_RoundTrips(string json)
    {
        byte[] file = File(json, 0);

        SafetensorsHeader header = AssertRoundTrip(file);
        Assert.Empty(header.Tensors);
        Assert.Equal(0, header.DataLength);
    }

    [Fact]
    public void Read_UnicodeTensorNames_RoundTripAndDecode()
    {
        // Raw UTF-8 names, a supplementary-plane character, escaped non-ASCII, an escaped surrogate
        // pair, and JSON escapes of quote, backslash and a control character.
        string json = "{"
            + Entry("模型.层.0.权重", "BF16", "[2]", 0, 4) + ","
            + Entry("emoji🙂", "U8", "[1]", 4, 5) + ","
            + Entry("caf\\u00e9", "U8", "[1]", 5, 6) + ","
            + Entry("\\ud83d\\ude00", "U8", "[1]", 6, 7) + ","
            + Entry("q\\\"b\\\\s\\n", "U8", "[1]", 7, 8) + ","
            + Entry("Ωmega", "U8", "[1]", 8, 9) + "}";
        byte[] file = File(json, 9);

        AssertRoundTrip(file,
            new Expected("模型.层.0.权重", "BF16", [2], 0, 4),
            new Expected("emoji🙂", "U8", [1], 4, 5),
            new Expected("caf\u00e9", "U8", [1], 5, 6),
            new Expected("\U0001F600", "U8", [1], 6, 7),
            new Expected("q\"b\\s\n", "U8", [1], 7, 8),
            new Expected("Ωmega", "U8", [1], 8, 9));
    }

    [Fact]
    public void Read_HandWrittenHeaderUnlikeCreate_HeaderBytesPreservedExactly()
    {
        // Key order inside the entry, spacing, metadata after the tensors: nothing Create() would emit.
        string json = "{ \"w\" : { \"shape\" : [ 2 , 2 ],\n  \"data_offsets\":[0, 8], \"dtype\":\"F16\" } ,\n"
            + " \"__metadata__\" : { \"format\" : \"pt\" } }   ";
        byte[] header = Encoding.UTF8.GetBytes(json);
        byte[] file = File(header, Data(8));

        SafetensorsHeader parsed = AssertRoundTrip(file, new Expected("w", "F16", [2, 2], 0, 8));

        Assert.Equal(header, parsed.HeaderBytes);
        SafetensorsHeader created = SafetensorsHeader.Create([("w", DType.F16, [2, 2])], new Dictionary<string, string> { ["format"] = "pt" });
        Assert.NotEqual(created.HeaderBytes, parsed.HeaderBytes);
        Assert.Equal(created.DataLength, parsed.DataLength);
    }

    [Fact]
    public void Read_EscapedKeysFieldsAndDtype_MeanWhatTheySpell()
    {
        // JSON escapes are the same text: "\u0064type" is "dtype", "F\u0033\u0032" is "F32".
        string json = "{\"\\u0077\":{\"\\u0064type\":\"F\\u0033\\u0032\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        byte[] file = File(json, 8);

        SafetensorsHeader header = AssertRoundTrip(file, new Expected("w", "F32", [2], 0, 8));

        Assert.Equal(Encoding.UTF8.GetBytes(json), header.HeaderBytes);
    }

    [Fact]
    public void Read_UnalignedHeaderLength_Accepted()
    {
        // Writers pad to 8, but the format does not require it.
        string json = "{" + Entry("a", "U8", "[1]", 0, 1) + "}";
        Assert.NotEqual(0, json.Length % 8);

        AssertRoundTrip(File(json, 1), new Expected("a", "U8", [1], 0, 1));
    }

    [Fact]
    public void Read_ManyEmptyTensorsAtOneOffset_KeepHeaderOrder()
    {
        // Ties in data order are broken by header order, so the tensor list does not depend on the sort algorithm.
        var names = Enumerable.Range(0, 40).Select(i => $"e{i:D2}").ToArray();
        string json = "{" + Entry("a", "U8", "[2]", 0, 2) + "," + string.Join(",", names.Select(n => Entry(n, "F32", "[0]", 2, 2))) + "}";

        SafetensorsHeader header = Read(File(json, 2));

        Assert.Equal(["a", .. names], header.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void WriteTo_AfterParse_WritesLittleEndianLengthThenHeader()
    {
        byte[] header = Encoding.UTF8.GetBytes("{}" + new string(' ', 0x1234 - 2));
        byte[] file = File(header, []);

        byte[] written = Rewrite(Read(file), []);

        Assert.Equal(new byte[] { 0x34, 0x12, 0, 0, 0, 0, 0, 0 }, written[..8]);
        Assert.Equal(file, written);
    }

    private static long[] ParseShape(string shape) =>
        shape.Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
}
