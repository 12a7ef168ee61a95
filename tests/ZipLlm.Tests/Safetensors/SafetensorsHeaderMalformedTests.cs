using System.Text;
using ZipLlm.Safetensors;
using static ZipLlm.Tests.Safetensors.SafetensorsBytes;

namespace ZipLlm.Tests.Safetensors;

/// <summary>
/// Every malformed file is built by hand; each differs from <see cref="ValidJson"/> (accepted by
/// <see cref="Read_ValidTemplate_Accepted"/>) only in the fault under test.
/// </summary>
public class SafetensorsHeaderMalformedTests
{
    private const string ValidJson = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    private static byte[] ValidFile() => File(ValidJson, 8);

    /// <summary>A header whose single tensor "w" has the given member list.</summary>
    private static byte[] WithEntry(string members, long dataLength = 8) => File("{\"w\":{" + members + "}}", dataLength);

    /// <summary>A valid tensor "w" ([0, 8), F32 [2]) plus a <c>__metadata__</c> member written as given.</summary>
    private static byte[] WithMetadata(string metadataJson) =>
        File("{\"__metadata__\":" + metadataJson + "," + Entry("w", "F32", "[2]", 0, 8) + "}", 8);

    private static string Nested(int depth, string inner = "") => new string('[', depth) + inner + new string(']', depth);

    [Fact]
    public void Read_ValidTemplate_Accepted()
    {
        SafetensorsHeader header = Read(ValidFile());

        TensorInfo w = Assert.Single(header.Tensors);
        Assert.Equal(("w", DType.F32, 0L, 8L), (w.Name, w.DType, w.Begin, w.End));
        Assert.Equal([2L], w.Shape);
        Assert.Equal(ValidFile().Length, header.FileLength);
    }

    // ---- Length prefix ----

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void Read_FileShorterThanLengthPrefix_ThrowsEndOfStream(int length)
    {
        byte[] file = ValidFile()[..length];

        AssertRefused<EndOfStreamException>(file, "shorter", $"{length} bytes");
    }

    [Fact]
    public void Read_FileLengthArgumentShorterThanPrefix_ThrowsEndOfStream()
    {
        byte[] file = ValidFile();

        var ex = Assert.Throws<EndOfStreamException>(() => SafetensorsHeader.Read(new MemoryStream(file), 5, FileName));
        Assert.Contains(FileName, ex.Message);
        Assert.Contains("shorter", ex.Message);
    }

    [Fact]
    public void Read_HeaderLengthPastEndOfFile_ThrowsEndOfStream()
    {
        byte[] header = Encoding.UTF8.GetBytes(ValidJson);
        byte[] file = [.. Prefix((ulong)header.Length + 100), .. header, .. Data(8)];

        AssertRefused<EndOfStreamException>(file, "past the end");
    }

    [Fact]
    public void Read_HeaderLengthOneByteLongerThanFile_ThrowsEndOfStream()
    {
        byte[] header = Encoding.UTF8.GetBytes("{}");
        byte[] file = [.. Prefix(3), .. header];

        AssertRefused<EndOfStreamException>(file, "past the end", "header length 3");
    }

    [Fact]
    public void Read_StreamEndsBeforeStatedFileLength_ThrowsEndOfStream()
    {
        byte[] file = ValidFile();
        byte[] truncated = file[..20];

        var ex = Assert.Throws<EndOfStreamException>(() => SafetensorsHeader.Read(new MemoryStream(truncated), file.Length, FileName));
        Assert.Contains(FileName, ex.Message);
        Assert.Contains("ends inside", ex.Message);
    }

    [Theory]
    [InlineData(SafetensorsFormat.MaxHeaderSize + 1)]
    [InlineData((ulong)long.MaxValue)]
    [InlineData((ulong)long.MaxValue + 1)]
    [InlineData(ulong.MaxValue)]
    public void Read_HeaderLengthOverCap_ThrowsInvalidData(ulong headerLength)
    {
        byte[] file = [.. Prefix(headerLength), .. Encoding.UTF8.GetBytes(ValidJson), .. Data(8)];

        AssertRefused<InvalidDataException>(file, "exceeds", "limit", headerLength.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Read_GitLfsPointerFile_ThrowsInvalidDataMentioningLfs()
    {
        string pointer = "version https://git-lfs.github.com/spec/v1\n"
            + "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
            + "size 123\n";
        byte[] file = Encoding.ASCII.GetBytes(pointer);

        AssertRefused<InvalidDataException>(file, "LFS", "pointer");
    }

    // ---- Header bytes: encoding, JSON syntax, root type ----

    [Fact]
    public void Read_EmptyHeader_ThrowsInvalidData()
    {
        byte[] file = Prefix(0);

        AssertRefused<InvalidDataException>(file, "empty");
    }

    [Fact]
    public void Read_EmptyHeaderFollowedByData_ThrowsInvalidData()
    {
        byte[] file = [.. Prefix(0), .. Data(8)];

        AssertRefused<InvalidDataException>(file, "empty");
    }

    [Theory]
    [InlineData("FF")]              // never valid in UTF-8
    [InlineData("C080")]            // overlong encoding of U+0000
    [InlineData("EDA080")]          // a UTF-16 surrogate encoded as UTF-8
    [InlineData("E282")]            // truncated three-byte sequence
    [InlineData("80")]              // lone continuation byte
    public void Read_InvalidUtf8InHeader_ThrowsInvalidData(string hex)
    {
        byte[] header = [.. "{\"w"u8, .. Convert.FromHexString(hex), .. "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"u8];
        byte[] file = File(header, Data(8));

        AssertRefused<InvalidDataException>(file, "UTF-8");
    }

    [Theory]
    [InlineData("{\"w\":}")]
    [InlineData("{\"w\" {}}")]
    [InlineData("{,}")]
    [InlineData("{")]
    [InlineData("{\"w\":{\"dtype\":\"F32\"")]
    [InlineData("{'w':{}}")]
    [InlineData("{/* comment */}")]
    [InlineData("{}{}")]
    [InlineData("{} x")]
    [InlineData("{}\0\0\0\0")]
    [InlineData("{\"__metadata__\":{\"a\":\"b\",}}")]
    [InlineData("{\"__metadata__\":{\"a\":\"b\nc\"}}")]
    [InlineData("{\"__metadata__\":{\"a\":\"\\x41\"}}")]
    [InlineData("        ")]
    [InlineData("\uFEFF{}")]
    public void Read_InvalidJson_ThrowsInvalidData(string json)
    {
        byte[] file = File(json, 0);

        AssertRefused<InvalidDataException>(file, "JSON");
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("[{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}]")]
    [InlineData("42")]
    [InlineData("\"{}\"")]
    [InlineData("null")]
    [InlineData("true")]
    public void Read_HeaderNotAJsonObject_ThrowsInvalidData(string json)
    {
        byte[] file = File(json, 0);

        AssertRefused<InvalidDataException>(file, "not a JSON object");
    }

    [Theory]
    [InlineData("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}")]
    [InlineData("{\"\\udc00x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}")]
    [InlineData("{\"__metadata__\":{\"\\ud800\":\"v\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}")]
    [InlineData("{\"__metadata__\":{\"k\":\"\\ud800\\u0041\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}")]
    [InlineData("{\"w\":{\"dtype\":\"\\ud800\",\"shape\":[2],\"data_offsets\":[0,8]}}")]
    [InlineData("{\"w\":{\"\\ud800\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}")]
    public void Read_EscapedLoneSurrogate_ThrowsInvalidData(string json)
    {
        byte[] file = File(json, 8);

        AssertRefused<InvalidDataException>(file, "escape");
    }

    // ---- Keys and __metadata__ ----

    [Fact]
    public void Read_DuplicateTensorKey_ThrowsInvalidData()
    {
        byte[] file = File("{" + Entry("w", "F32", "[2]", 0, 8) + "," + Entry("w", "F32", "[2]", 8, 16) + "}", 16);

        AssertRefused<InvalidDataException>(file, "duplicate", "\"w\"");
    }

    [Fact]
    public void Read_DuplicateTensorKeySpelledWithEscape_ThrowsInvalidData()
    {
        byte[] file = File("{" + Entry("w", "F32", "[2]", 0, 8) + "," + Entry("\\u0077", "F32", "[2]", 8, 16) + "}", 16);

        AssertRefused<InvalidDataException>(file, "duplicate", "\"w\"");
    }

    [Fact]
    public void Read_DuplicateMetadataKey_ThrowsInvalidData()
    {
        byte[] file = File("{\"__metadata__\":{},\"__metadata__\":{}," + Entry("w", "F32", "[2]", 0, 8) + "}", 8);

        AssertRefused<InvalidDataException>(file, "duplicate", "__metadata__");
    }

    [Fact]
    public void Read_DuplicateKeyInsideMetadata_ThrowsInvalidData()
    {
        byte[] file = WithMetadata("{\"format\":\"pt\",\"format\":\"pt\"}");

        AssertRefused<InvalidDataException>(file, "duplicate", "\"format\"", "__metadata__");
    }

    [Theory]
    [InlineData("1", "number")]
    [InlineData("-2.5", "number")]
    [InlineData("{}", "object")]
    [InlineData("{\"a\":\"b\"}", "object")]
    [InlineData("null", "null")]
    [InlineData("true", "boolean")]
    [InlineData("[\"pt\"]", "array")]
    public void Read_MetadataValueNotString_ThrowsInvalidData(string value, string kind)
    {
        byte[] file = WithMetadata("{\"format\":" + value + "}");

        AssertRefused<InvalidDataException>(file, "__metadata__", "\"format\"", kind, "not a string");
    }

    [Theory]
    [InlineData("\"pt\"")]
    [InlineData("[]")]
    [InlineData("[{\"format\":\"pt\"}]")]
    [InlineData("7")]
    [InlineData("null")]
    public void Read_MetadataNotObject_ThrowsInvalidData(string metadata)
    {
        byte[] file = WithMetadata(metadata);

        AssertRefused<InvalidDataException>(file, "__metadata__", "not an object");
    }

    // ---- dtype ----

    [Theory]
    [InlineData("F128")]
    [InlineData("bf16")]
    [InlineData("f32")]
    [InlineData("F32 ")]
    [InlineData("")]
    [InlineData("float32")]
    [InlineData("F8")]
    public void Read_UnknownDtype_ThrowsInvalidData(string dtype)
    {
        byte[] file = WithEntry($"\"dtype\":\"{dtype}\",\"shape\":[2],\"data_offsets\":[0,8]");

        AssertRefused<InvalidDataException>(file, "unknown dtype", $"\"{dtype}\"");
    }

    [Theory]
    [InlineData("32", "number")]
    [InlineData("null", "null")]
    [InlineData("[\"F32\"]", "array")]
    [InlineData("{\"name\":\"F32\"}", "object")]
    [InlineData("false", "boolean")]
    public void Read_DtypeNotString_ThrowsInvalidData(string dtype, string kind)
    {
        byte[] file = WithEntry($"\"dtype\":{dtype},\"shape\":[2],\"data_offsets\":[0,8]");

        AssertRefused<InvalidDataException>(file, "dtype", kind, "not a string");
    }

    // ---- Tensor entry fields ----

    [Theory]
    [InlineData("\"shape\":[2],\"data_offsets\":[0,8]", "dtype")]
    [InlineData("\"dtype\":\"F32\",\"data_offsets\":[0,8]", "shape")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[2]", "data_offsets")]
    [InlineData("", "dtype")]
    public void Read_MissingField_ThrowsInvalidData(string members, string field)
    {
        byte[] file = WithEntry(members);

        AssertRefused<InvalidDataException>(file, "missing", $"\"{field}\"", "\"w\"");
    }

    [Theory]
    [InlineData("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"strides\":[1]", "strides")]
    [InlineData("\"Dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", "Dtype")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"__metadata__\":{}", "__metadata__")]
    public void Read_UnknownField_ThrowsInvalidData(string members, string field)
    {
        byte[] file = WithEntry(members);

        AssertRefused<InvalidDataException>(file, "unknown field", $"\"{field}\"");
    }

    [Theory]
    [InlineData("\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", "dtype")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[2],\"shape\":[2],\"data_offsets\":[0,8]", "shape")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"data_offsets\":[0,8]", "data_offsets")]
    public void Read_DuplicateField_ThrowsInvalidData(string members, string field)
    {
        byte[] file = WithEntry(members);

        AssertRefused<InvalidDataException>(file, "duplicate field", $"\"{field}\"");
    }

    [Theory]
    [InlineData("42", "number")]
    [InlineData("\"F32\"", "string")]
    [InlineData("[]", "array")]
    [InlineData("null", "null")]
    public void Read_TensorEntryNotObject_ThrowsInvalidData(string entry, string kind)
    {
        byte[] file = File("{\"w\":" + entry + "}", 0);

        AssertRefused<InvalidDataException>(file, "\"w\"", kind, "not an object");
    }

    [Theory]
    [InlineData("2", "number")]
    [InlineData("\"[2]\"", "string")]
    [InlineData("{\"0\":2}", "object")]
    [InlineData("null", "null")]
    public void Read_ShapeNotArray_ThrowsInvalidData(string shape, string kind)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[0,8]");

        AssertRefused<InvalidDataException>(file, "shape", kind, "not an array");
    }

    [Theory]
    [InlineData("[1.5]")]
    [InlineData("[2.0]")]
    [InlineData("[2e0]")]
    [InlineData("[\"2\"]")]
    [InlineData("[null]")]
    [InlineData("[true]")]
    [InlineData("[[2]]")]
    [InlineData("[{}]")]
    [InlineData("[9223372036854775808]")]
    [InlineData("[99999999999999999999999]")]
    public void Read_ShapeHoldsNonInteger_ThrowsInvalidData(string shape)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[0,8]");

        AssertRefused<InvalidDataException>(file, "shape", "not an integer");
    }

    [Fact]
    public void Read_ShapeRankOverLimit_ThrowsInvalidData()
    {
        string shape = "[" + string.Join(",", Enumerable.Repeat("1", SafetensorsFormat.MaxRank + 1)) + "]";
        byte[] file = WithEntry($"\"dtype\":\"U8\",\"shape\":{shape},\"data_offsets\":[0,1]", 1);

        AssertRefused<InvalidDataException>(file, "shape", $"more than {SafetensorsFormat.MaxRank}");
    }

    [Fact]
    public void Read_ShapeRankAtLimit_Accepted()
    {
        string shape = "[" + string.Join(",", Enumerable.Repeat("1", SafetensorsFormat.MaxRank)) + "]";
        byte[] file = WithEntry($"\"dtype\":\"U8\",\"shape\":{shape},\"data_offsets\":[0,1]", 1);

        Assert.Equal(SafetensorsFormat.MaxRank, Assert.Single(Read(file).Tensors).Shape.Length);
    }

    [Theory]
    [InlineData("[]", "0 values")]
    [InlineData("[8]", "1 values")]
    [InlineData("[0,8,8]", "more than 2")]
    [InlineData("[0,4,8,16]", "more than 2")]
    public void Read_DataOffsetsWrongCount_ThrowsInvalidData(string offsets, string word)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{offsets}");

        AssertRefused<InvalidDataException>(file, "data_offsets", word);
    }

    [Theory]
    [InlineData("\"0,8\"", "string")]
    [InlineData("{\"begin\":0}", "object")]
    public void Read_DataOffsetsNotArray_ThrowsInvalidData(string offsets, string kind)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{offsets}");

        AssertRefused<InvalidDataException>(file, "data_offsets", kind, "not an array");
    }

    [Theory]
    [InlineData("[0.0,8]")]
    [InlineData("[0,\"8\"]")]
    [InlineData("[0,8.5]")]
    public void Read_DataOffsetsHoldNonInteger_ThrowsInvalidData(string offsets)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{offsets}");

        AssertRefused<InvalidDataException>(file, "data_offsets", "not an integer");
    }

    // ---- Shape arithmetic ----

    [Theory]
    [InlineData("[-2]")]
    [InlineData("[2,-1]")]
    [InlineData("[-2,-1]")]
    public void Read_NegativeDimension_ThrowsInvalidData(string shape)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[0,8]");

        AssertRefused<InvalidDataException>(file, "shape", "negative");
    }

    [Theory]
    [InlineData("[1099511627776,1099511627776]")]                 // 2^40 * 2^40 = 2^80
    [InlineData("[4611686018427387904,4]")]                       // 2^62 * 4 = 2^64
    [InlineData("[3037000500,3037000500]")]                       // just over sqrt(2^63)
    [InlineData("[2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]")]
    public void Read_ElementCountOverflows_ThrowsInvalidData(string shape)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[0,8]");

        AssertRefused<InvalidDataException>(file, "shape", "overflows");
    }

    [Theory]
    [InlineData("[9223372036854775807]")]
    [InlineData("[1099511627776,1099511627776,0]")]
    public void Read_HugeOrZeroedShape_NeverOverflowsSilently(string shape)
    {
        // A zero dimension makes the count 0 whatever came before; a count past long.MaxValue / 64
        // cannot be turned into bits. Either way the span [0, 8) does not match, so the file is refused.
        byte[] file = WithEntry($"\"dtype\":\"F64\",\"shape\":{shape},\"data_offsets\":[0,8]");

        AssertRefused<InvalidDataException>(file, "\"w\"");
    }

    [Theory]
    [InlineData("F32", "[2]", 0, 4, "needs 8 bytes", "span 4")]
    [InlineData("F32", "[2]", 0, 12, "needs 8 bytes", "span 12")]
    [InlineData("BF16", "[3,3]", 0, 9, "needs 18 bytes", "span 9")]
    [InlineData("U8", "[]", 0, 0, "needs 1 bytes", "span 0")]
    [InlineData("F64", "[0]", 0, 8, "needs 0 bytes", "span 8")]
    [InlineData("F4", "[4]", 0, 4, "needs 2 bytes", "span 4")]
    [InlineData("F6_E2M3", "[4]", 0, 4, "needs 3 bytes", "span 4")]
    public void Read_ShapeTimesDtypeSizeNotOffsetSpan_ThrowsInvalidData(string dtype, string shape, long begin, long end, string needs, string span)
    {
        byte[] file = WithEntry($"\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]", end);

        AssertRefused<InvalidDataException>(file, "\"w\"", needs, span);
    }

    [Theory]
    [InlineData("F4", "[3]", 2)]
    [InlineData("F4", "[1]", 1)]
    [InlineData("F4", "[3,5]", 8)]
    [InlineData("F6_E2M3", "[3]", 3)]
    [InlineData("F6_E3M2", "[2]", 2)]
    public void Read_SubByteDtypeEndingMidByte_ThrowsInvalidData(string dtype, string shape, long bytes)
    {
        byte[] file = WithEntry($"\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[0,{bytes}]", bytes);

        AssertRefused<InvalidDataException>(file, "\"w\"", "whole bytes");
    }

    // ---- Offsets against the data section and each other ----

    [Fact]
    public void Read_TensorEndsPastDataSection_ThrowsInvalidData()
    {
        byte[] file = WithEntry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", dataLength: 4);

        AssertRefused<InvalidDataException>(file, "\"w\"", "past", "4-byte data section");
    }

    [Fact]
    public void Read_SecondTensorEndsPastDataSection_ThrowsInvalidData()
    {
        byte[] file = File("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 8, 16) + "}", 12);

        AssertRefused<InvalidDataException>(file, "\"b\"", "past");
    }

    [Fact]
    public void Read_OffsetsReversed_ThrowsInvalidData()
    {
        byte[] file = WithEntry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]");

        AssertRefused<InvalidDataException>(file, "\"w\"", "reversed");
    }

    [Theory]
    [InlineData("[-8,0]")]
    [InlineData("[0,-8]")]
    public void Read_NegativeOffset_ThrowsInvalidData(string offsets)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{offsets}");

        AssertRefused<InvalidDataException>(file, "data_offsets", "negative");
    }

    [Fact]
    public void Read_OverlappingTensors_ThrowsInvalidData()
    {
        byte[] file = File("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}", 12);

        AssertRefused<InvalidDataException>(file, "\"b\"", "overlaps");
    }

    [Fact]
    public void Read_TwoTensorsSameRange_ThrowsInvalidData()
    {
        byte[] file = File("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 0, 8) + "}", 8);

        AssertRefused<InvalidDataException>(file, "overlaps");
    }

    [Fact]
    public void Read_EmptyTensorInsideAnother_ThrowsInvalidData()
    {
        byte[] file = File("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("e", "F32", "[0]", 4, 4) + "}", 8);

        AssertRefused<InvalidDataException>(file, "\"e\"", "overlaps");
    }

    [Fact]
    public void Read_HoleBetweenTensors_ThrowsInvalidData()
    {
        byte[] file = File("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 12, 20) + "}", 20);

        AssertRefused<InvalidDataException>(file, "\"b\"", "hole", "after byte 8");
    }

    [Fact]
    public void Read_HoleBeforeFirstTensor_ThrowsInvalidData()
    {
        byte[] file = WithEntry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]", 12);

        AssertRefused<InvalidDataException>(file, "\"w\"", "hole", "after byte 0");
    }

    [Fact]
    public void Read_EmptyTensorPastDataSection_ThrowsInvalidData()
    {
        byte[] file = File("{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("e", "F32", "[0]", 16, 16) + "}", 8);

        AssertRefused<InvalidDataException>(file, "\"e\"", "hole");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public void Read_TrailingBytesAfterLastTensor_ThrowsInvalidData(int extra)
    {
        byte[] file = WithEntry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8 + extra);

        AssertRefused<InvalidDataException>(file, $"{extra} trailing bytes");
    }

    [Fact]
    public void Read_DataWithoutTensors_ThrowsInvalidData()
    {
        byte[] file = File("{}", 3);

        AssertRefused<InvalidDataException>(file, "3 trailing bytes");
    }

    // ---- Hostile nesting ----

    [Theory]
    [InlineData(1_000)]
    [InlineData(100_000)]
    public void Read_DeeplyNestedMetadataValue_ThrowsInvalidData(int depth)
    {
        byte[] file = WithMetadata("{\"k\":" + Nested(depth) + "}");

        AssertRefused<InvalidDataException>(file, "__metadata__", "not a string");
    }

    [Theory]
    [InlineData(1_000)]
    [InlineData(100_000)]
    public void Read_DeeplyNestedShape_ThrowsInvalidData(int depth)
    {
        byte[] file = WithEntry($"\"dtype\":\"F32\",\"shape\":{Nested(depth, "2")},\"data_offsets\":[0,8]");

        AssertRefused<InvalidDataException>(file, "shape", "not an integer");
    }

    [Theory]
    [InlineData(1_000)]
    [InlineData(100_000)]
    public void Read_DeeplyNestedTensorEntry_ThrowsInvalidData(int depth)
    {
        byte[] file = File("{\"w\":" + Nested(depth) + "}", 0);

        AssertRefused<InvalidDataException>(file, "\"w\"", "not an object");
    }

    [Fact]
    public void Read_DeeplyNestedObjectsInUnknownField_ThrowsInvalidData()
    {
        string nested = string.Concat(Enumerable.Repeat("{\"a\":", 1_000)) + "1" + new string('}', 1_000);
        byte[] file = WithEntry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":" + nested);

        AssertRefused<InvalidDataException>(file, "unknown field");
    }

    [Fact]
    public void Read_DeeplyNestedRoot_ThrowsInvalidData()
    {
        byte[] file = File(Nested(1_000), 0);

        AssertRefused<InvalidDataException>(file, "not a JSON object");
    }

    [Fact]
    public void Parse_NestingDeeperThanLimit_ThrowsInvalidData()
    {
        // Unbalanced nesting inside a metadata value: the JSON reader itself must stop, not recurse.
        byte[] header = Encoding.UTF8.GetBytes("{\"__metadata__\":{\"k\":" + new string('[', 5_000));

        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsHeader.Parse(header, 0, FileName));
        Assert.Contains(FileName, ex.Message);
    }
}
