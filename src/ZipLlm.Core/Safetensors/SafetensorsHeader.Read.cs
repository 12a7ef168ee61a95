using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;

namespace ZipLlm.Safetensors;

// Reading: the length prefix, then the header JSON validated token by token against the data section (hostile input).
internal sealed partial class SafetensorsHeader
{
    /// <summary>
    /// Reads and validates the length prefix and header of a safetensors file from
    /// <paramref name="stream"/>, positioned at the file's start. Reads only the header.
    /// </summary>
    /// <param name="stream">The file's bytes; its position is left just past the header.</param>
    /// <param name="fileLength">Total byte length of the file.</param>
    /// <param name="fileName">Named in every error message.</param>
    /// <exception cref="InvalidDataException">The header is malformed or does not match the file's length.</exception>
    /// <exception cref="EndOfStreamException">The file ends inside the length prefix or the header.</exception>
    public static SafetensorsHeader Read(Stream stream, long fileLength, string fileName)
    {
        Span<byte> prefix = stackalloc byte[SafetensorsFormat.LengthPrefixSize];
        int got = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        if (got < prefix.Length || fileLength < SafetensorsFormat.LengthPrefixSize)
        {
            throw new EndOfStreamException(
                $"{fileName}: file is {Math.Min(got, fileLength)} bytes, shorter than the 8-byte header length prefix.");
        }
        if (Encoding.ASCII.GetString(prefix).StartsWith(SafetensorsFormat.GitLfsPointerPrefix[..8], StringComparison.Ordinal))
        {
            throw new InvalidDataException(
                $"{fileName}: this is a Git LFS pointer file, not the weights; fetch the real file (git lfs pull).");
        }

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > SafetensorsFormat.MaxHeaderSize)
        {
            throw new InvalidDataException(
                $"{fileName}: header length {headerLength} exceeds the {SafetensorsFormat.MaxHeaderSize}-byte limit.");
        }
        if ((long)headerLength > fileLength - SafetensorsFormat.LengthPrefixSize)
        {
            throw new EndOfStreamException(
                $"{fileName}: header length {headerLength} runs past the end of the {fileLength}-byte file.");
        }

        byte[] headerBytes = new byte[(int)headerLength];
        int read = stream.ReadAtLeast(headerBytes, headerBytes.Length, throwOnEndOfStream: false);
        if (read < headerBytes.Length)
        {
            throw new EndOfStreamException($"{fileName}: file ends inside the {headerLength}-byte header.");
        }
        long dataLength = fileLength - SafetensorsFormat.LengthPrefixSize - (long)headerLength;
        return Parse(headerBytes, dataLength, fileName);
    }

    /// <summary>Validates header JSON against a data section of <paramref name="dataLength"/> bytes.</summary>
    /// <exception cref="InvalidDataException">The header is malformed or does not describe the data section exactly.</exception>
    public static SafetensorsHeader Parse(byte[] headerBytes, long dataLength, string fileName)
    {
        if (headerBytes.Length == 0)
        {
            Fail(fileName, "header is empty.");
        }
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
        {
            Fail(fileName, "header is not valid UTF-8.");
        }

        var tensors = new List<TensorInfo>();
        Dictionary<string, string>? metadata = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var reader = new Utf8JsonReader(headerBytes, new JsonReaderOptions
        {
            MaxDepth = SafetensorsFormat.MaxJsonDepth,
            CommentHandling = JsonCommentHandling.Disallow,
            AllowTrailingCommas = false,
        });

        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                Fail(fileName, "header is not a JSON object.");
            }
            while (true)
            {
                Next(ref reader, fileName);
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    break;
                }
                string key = GetString(ref reader, fileName);
                if (!seen.Add(key))
                {
                    Fail(fileName, $"duplicate key \"{key}\" in header.");
                }
                Next(ref reader, fileName);
                if (key == SafetensorsFormat.MetadataKey)
                {
                    metadata = ReadMetadata(ref reader, fileName);
                }
                else
                {
                    tensors.Add(ReadTensor(ref reader, key, fileName));
                }
            }
            // Anything after the root object other than whitespace (the writer's padding) is an error.
            if (reader.Read())
            {
                Fail(fileName, "unexpected content after the header's JSON object.");
            }
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{fileName}: header is not valid JSON: {ex.Message}", ex);
        }

        // A stable sort: empty tensors sharing an offset keep their header order, whatever the list's size.
        tensors = [.. tensors.OrderBy(static t => t.Begin).ThenBy(static t => t.End)];
        long expected = 0;
        foreach (TensorInfo t in tensors)
        {
            if (t.Begin < expected)
            {
                Fail(fileName, $"tensor \"{t.Name}\" at [{t.Begin}, {t.End}) overlaps the previous tensor, which ends at {expected}.");
            }
            if (t.Begin > expected)
            {
                Fail(fileName, $"tensor \"{t.Name}\" starts at {t.Begin}, leaving a hole after byte {expected}.");
            }
            expected = t.End;
            if (expected > dataLength)
            {
                Fail(fileName, $"tensor \"{t.Name}\" ends at {t.End}, past the {dataLength}-byte data section.");
            }
        }
        if (expected != dataLength)
        {
            Fail(fileName, $"{dataLength - expected} trailing bytes after the last tensor.");
        }
        return new SafetensorsHeader(headerBytes, tensors, metadata);
    }


    private static Dictionary<string, string> ReadMetadata(ref Utf8JsonReader reader, string fileName)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            Fail(fileName, "__metadata__ is not an object.");
        }
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        while (true)
        {
            Next(ref reader, fileName);
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                return metadata;
            }
            string key = GetString(ref reader, fileName);
            Next(ref reader, fileName);
            if (reader.TokenType != JsonTokenType.String)
            {
                Fail(fileName, $"__metadata__ value for \"{key}\" is a {Describe(reader.TokenType)}, not a string.");
            }
            if (!metadata.TryAdd(key, GetString(ref reader, fileName)))
            {
                Fail(fileName, $"duplicate key \"{key}\" in __metadata__.");
            }
        }
    }

    private static TensorInfo ReadTensor(ref Utf8JsonReader reader, string name, string fileName)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            Fail(fileName, $"tensor \"{name}\": entry is a {Describe(reader.TokenType)}, not an object.");
        }
        DType? dtype = null;
        long[]? shape = null;
        long[]? offsets = null;
        while (true)
        {
            Next(ref reader, fileName);
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                break;
            }
            string field = GetString(ref reader, fileName);
            Next(ref reader, fileName);
            switch (field)
            {
                case "dtype":
                    if (dtype is not null)
                    {
                        Fail(fileName, $"tensor \"{name}\": duplicate field \"dtype\".");
                    }
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        Fail(fileName, $"tensor \"{name}\": dtype is a {Describe(reader.TokenType)}, not a string.");
                    }
                    // An escaped name means what it spells ("F\u0033\u0032" is "F32"), as for keys and to the reference reader.
                    ReadOnlySpan<byte> dtypeName = reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(GetString(ref reader, fileName)) : reader.ValueSpan;
                    if (!DTypes.TryParse(dtypeName, out DType parsed))
                    {
                        throw Error(fileName, $"tensor \"{name}\": unknown dtype \"{GetString(ref reader, fileName)}\".");
                    }
                    dtype = parsed;
                    break;
                case "shape":
                    if (shape is not null)
                    {
                        Fail(fileName, $"tensor \"{name}\": duplicate field \"shape\".");
                    }
                    shape = ReadIntegers(ref reader, name, "shape", fileName, SafetensorsFormat.MaxRank);
                    break;
                case "data_offsets":
                    if (offsets is not null)
                    {
                        Fail(fileName, $"tensor \"{name}\": duplicate field \"data_offsets\".");
                    }
                    offsets = ReadIntegers(ref reader, name, "data_offsets", fileName, 2);
                    if (offsets.Length != 2)
                    {
                        Fail(fileName, $"tensor \"{name}\": data_offsets has {offsets.Length} values, not 2.");
                    }
                    break;
                default:
                    Fail(fileName, $"tensor \"{name}\": unknown field \"{field}\".");
                    break;
            }
        }
        if (dtype is null)
        {
            Fail(fileName, $"tensor \"{name}\": missing field \"dtype\".");
        }
        if (shape is null)
        {
            Fail(fileName, $"tensor \"{name}\": missing field \"shape\".");
        }
        if (offsets is null)
        {
            Fail(fileName, $"tensor \"{name}\": missing field \"data_offsets\".");
        }
        long elements = 1;
        foreach (long d in shape)
        {
            if (d < 0)
            {
                Fail(fileName, $"tensor \"{name}\": negative dimension {d} in shape.");
            }
            if (d != 0 && elements > long.MaxValue / d)
            {
                Fail(fileName, $"tensor \"{name}\": element count of shape [{string.Join(", ", shape)}] overflows.");
            }
            elements *= d;
        }
        if (elements > long.MaxValue / 64)
        {
            Fail(fileName, $"tensor \"{name}\": element count {elements} is too large.");
        }
        long bytes = dtype.Value.ByteCount(elements);
        if (bytes < 0)
        {
            Fail(fileName, $"tensor \"{name}\": {elements} {dtype} elements do not fill whole bytes.");
        }
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < 0)
        {
            Fail(fileName, $"tensor \"{name}\": negative data offset [{begin}, {end}].");
        }
        if (end < begin)
        {
            Fail(fileName, $"tensor \"{name}\": data offsets [{begin}, {end}] are reversed.");
        }
        if (end - begin != bytes)
        {
            Fail(fileName, $"tensor \"{name}\": shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes but data_offsets span {end - begin}.");
        }
        return new TensorInfo(name, dtype.Value, shape, begin, end);
    }

    private static long[] ReadIntegers(ref Utf8JsonReader reader, string name, string field, string fileName, int max)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            Fail(fileName, $"tensor \"{name}\": {field} is a {Describe(reader.TokenType)}, not an array.");
        }
        var values = new List<long>();
        while (true)
        {
            Next(ref reader, fileName);
            if (reader.TokenType == JsonTokenType.EndArray)
            {
                return values.ToArray();
            }
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long value))
            {
                throw Error(fileName, $"tensor \"{name}\": {field} holds a value that is not an integer.");
            }
            if (values.Count == max)
            {
                Fail(fileName, $"tensor \"{name}\": {field} has more than {max} values.");
            }
            if (value < 0)
            {
                Fail(fileName, $"tensor \"{name}\": {field} holds a negative value {value}.");
            }
            values.Add(value);
        }
    }

    /// <summary>The current string token, unescaped.</summary>
    /// <exception cref="InvalidDataException">An escape decodes to invalid UTF-16 (a lone surrogate such as <c>\ud800</c>).</exception>
    private static string GetString(ref Utf8JsonReader reader, string fileName)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException ex)
        {
            // The reader checks escape syntax while reading but surrogate pairing only when unescaping.
            throw new InvalidDataException($"{fileName}: header holds a string with an invalid \\u escape: {ex.Message}", ex);
        }
    }

    private static void Next(ref Utf8JsonReader reader, string fileName)
    {
        if (!reader.Read())
        {
            Fail(fileName, "header JSON ends early.");
        }
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    [DoesNotReturn]
    private static void Fail(string fileName, string message) => throw Error(fileName, message);

    private static InvalidDataException Error(string fileName, string message) => new($"{fileName}: {message}");
}
