using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace ZipLlm.Safetensors;

// Writing: a header built from names, dtypes and shapes, padded as the reference writer pads, and its bytes with their prefix.
internal sealed partial class SafetensorsHeader
{
    /// <summary>
    /// Builds a header for <paramref name="tensors"/> (laid out in the order given, packed end to end)
    /// padded with spaces to the format's alignment, as the reference writer does.
    /// </summary>
    /// <param name="tensors">Name, dtype and shape of each tensor, in data order.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> entries.</param>
    /// <exception cref="ArgumentException">
    /// A name repeats or is reserved, a name or metadata entry is not well-formed UTF-16, a dimension is negative,
    /// a shape is too large or past the reader's limits, or a sub-byte dtype would end mid-byte.
    /// </exception>
    public static SafetensorsHeader Create(
        IEnumerable<(string Name, DType DType, long[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var infos = new List<TensorInfo>();
        long offset = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string name, DType dtype, long[] shape) in tensors)
        {
            if (name == SafetensorsFormat.MetadataKey || !names.Add(name))
            {
                throw new ArgumentException($"Tensor name \"{name}\" is reserved or repeated.", nameof(tensors));
            }
            RequireWellFormed(name, nameof(tensors));
            long elements = 1, bytes, end;
            try
            {
                foreach (long d in shape)
                {
                    ArgumentOutOfRangeException.ThrowIfNegative(d, nameof(shape));
                    elements = checked(elements * d);
                }
                bytes = dtype.ByteCount(elements);
                end = checked(offset + bytes);
            }
            catch (OverflowException ex)
            {
                throw new ArgumentException($"Tensor \"{name}\": shape [{string.Join(", ", shape)}] is too large.", nameof(tensors), ex);
            }
            if (bytes < 0)
            {
                throw new ArgumentException($"Tensor \"{name}\": {elements} {dtype} elements do not fill whole bytes.", nameof(tensors));
            }
            infos.Add(new TensorInfo(name, dtype, shape, offset, end));
            offset = end;
        }
        if (metadata is not null)
        {
            foreach (KeyValuePair<string, string> pair in metadata)
            {
                RequireWellFormed(pair.Key, nameof(metadata));
                if (pair.Value is null)
                {
                    throw new ArgumentException($"Metadata value for \"{pair.Key}\" is null.", nameof(metadata));
                }
                RequireWellFormed(pair.Value, nameof(metadata));
            }
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (metadata is not null)
            {
                writer.WriteStartObject(SafetensorsFormat.MetadataKey);
                foreach (KeyValuePair<string, string> pair in metadata)
                {
                    writer.WriteString(pair.Key, pair.Value);
                }
                writer.WriteEndObject();
            }
            foreach (TensorInfo t in infos)
            {
                writer.WriteStartObject(t.Name);
                writer.WriteString("dtype", t.DType.Name());
                writer.WriteStartArray("shape");
                foreach (long d in t.Shape)
                {
                    writer.WriteNumberValue(d);
                }
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(t.Begin);
                writer.WriteNumberValue(t.End);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        int padding = (int)((SafetensorsFormat.HeaderAlignment - buffer.Length % SafetensorsFormat.HeaderAlignment) % SafetensorsFormat.HeaderAlignment);
        for (int i = 0; i < padding; i++)
        {
            buffer.WriteByte((byte)' ');
        }
        byte[] headerBytes = buffer.ToArray();
        try
        {
            return Parse(headerBytes, offset, "<new header>");
        }
        catch (InvalidDataException ex)
        {
            // Limits only the reader applies, such as the rank or the element count.
            throw new ArgumentException($"The tensors do not make a valid header: {ex.Message}", nameof(tensors), ex);
        }
    }

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Refuses a lone surrogate: the JSON writer would silently replace it with U+FFFD, so the
    /// header would name something other than what the caller asked for.
    /// </summary>
    private static void RequireWellFormed(string text, string paramName)
    {
        try
        {
            s_strictUtf8.GetByteCount(text);
        }
        catch (EncoderFallbackException ex)
        {
            throw new ArgumentException($"\"{text}\" is not well-formed UTF-16 (it holds a lone surrogate).", paramName, ex);
        }
    }

    /// <summary>Writes the length prefix and the header bytes; the tensors' data must follow in <see cref="Tensors"/> order.</summary>
    public void WriteTo(Stream stream)
    {
        Span<byte> prefix = stackalloc byte[SafetensorsFormat.LengthPrefixSize];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)HeaderBytes.Length);
        stream.Write(prefix);
        stream.Write(HeaderBytes);
    }
}
