using System.Buffers.Binary;
using ZipLlm.Codecs;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// Writes objects as format versions 1 and 2 laid them out, from a version 3 object whose chunks use nothing those
/// versions lacked (no rANS stream, no ordered difference, no base conversion, no F16 layout, and for version 1 no
/// sparse stream): version 3 moved the kind and the base reference from the header to the footer (with the conversion)
/// and added one byte a chunk (its transform); nothing else changed. So old objects are tested without old builds.
/// Version 4 differs from version 5 only in lacking the context XOR transform: <see cref="ToVersion4"/> relabels.
/// </summary>
internal static class LegacyObjects
{
    /// <summary>
    /// A version 5 object as version 4 wrote it, when none of its chunks is a context XOR (<see cref="ChunkTransform.ContextXor"/>,
    /// which version 4 lacked); with <paramref name="force"/>, relabelled whatever its chunks, as a corrupt or forged object would be.
    /// </summary>
    public static byte[] ToVersion4(byte[] v5, bool force = false)
    {
        int trailerSize = EncodedTensorFormat.FooterTrailerSize(5);
        (TensorHeader header, uint count) = TensorHeader.Read("v5", v5.AsSpan(0, TensorHeader.Size), v5.AsSpan(v5.Length - trailerSize));
        if (header.Version != 5)
        {
            throw new ArgumentException("Not a version 5 object.");
        }
        int footer = v5.Length - (int)header.FooterLength(count);
        for (int c = 0; c < count && !force; c++)
        {
            int start = (int)BinaryPrimitives.ReadInt64LittleEndian(v5.AsSpan(footer + 8 * c));
            if (v5[start + 12] == (byte)ChunkTransform.ContextXor)
            {
                throw new ArgumentException($"Chunk {c} is a context XOR, which version 4 cannot hold.");
            }
        }
        byte[] v4 = (byte[])v5.Clone();
        v4[4] = 4;
        return v4;
    }

    /// <summary>How many chunks of an object of version 3 or later are stored by <paramref name="transform"/>.</summary>
    public static int ChunksOf(byte[] encoded, ChunkTransform transform)
    {
        byte version = encoded[4];
        int trailerSize = EncodedTensorFormat.FooterTrailerSize(version);
        (TensorHeader header, uint count) = TensorHeader.Read("object", encoded.AsSpan(0, TensorHeader.Size), encoded.AsSpan(encoded.Length - trailerSize));
        int footer = encoded.Length - (int)header.FooterLength(count);
        int found = 0;
        for (int c = 0; c < count; c++)
        {
            int start = (int)BinaryPrimitives.ReadInt64LittleEndian(encoded.AsSpan(footer + 8 * c));
            found += encoded[start + 12] == (byte)transform ? 1 : 0;
        }
        return found;
    }

    public static byte[] Downgrade(byte[] v3, byte version)
    {
        int trailerSize = EncodedTensorFormat.FooterTrailerSize(3);
        (TensorHeader header, uint count) = TensorHeader.Read("v3", v3.AsSpan(0, TensorHeader.Size), v3.AsSpan(v3.Length - trailerSize));
        if (header.Version != 3 || version is not (1 or 2) || header.Conversion != BaseConversion.None || header.Layout == ElementLayout.Half)
        {
            throw new ArgumentException("Not a version 3 object that an older version can hold.");
        }
        int chunks = (int)count;
        int footer = v3.Length - (int)header.FooterLength(chunks);
        byte[] reference = v3.AsSpan(v3.Length - trailerSize - header.ReferenceLength, header.ReferenceLength).ToArray();
        var output = new MemoryStream();
        byte[] fixedPart = new byte[TensorHeader.Size];
        (header with { Version = version }).WriteHeader(fixedPart);
        output.Write(fixedPart);
        output.Write(reference);
        var offsets = new long[chunks];
        byte implied = (byte)(header.Kind == EncodedTensorKind.Delta ? ChunkTransform.Xor : ChunkTransform.Solo);
        for (int c = 0; c < chunks; c++)
        {
            int start = (int)BinaryPrimitives.ReadInt64LittleEndian(v3.AsSpan(footer + 8 * c));
            int end = c + 1 < chunks ? (int)BinaryPrimitives.ReadInt64LittleEndian(v3.AsSpan(footer + 8 * (c + 1))) : footer;
            if (v3[start + 12] != implied)
            {
                throw new ArgumentException($"Chunk {c} uses transform {v3[start + 12]}, which version {version} cannot hold.");
            }
            int entries = start + 13;
            for (int s = 0; s < header.Layout.StreamCount(); s++)
            {
                byte mode = v3[entries + s * EncodedTensorFormat.StreamEntrySize];
                if (mode > (version == 1 ? EncodedTensorFormat.ModeZstd : EncodedTensorFormat.ModeSparseZstd))
                {
                    throw new ArgumentException($"Chunk {c} has a stream of mode {mode}, which version {version} cannot hold.");
                }
            }
            offsets[c] = output.Position;
            output.Write(v3, start, 12);
            output.Write(v3, start + 13, end - start - 13);
        }
        Span<byte> bytes = stackalloc byte[8];
        foreach (long offset in offsets)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes, offset);
            output.Write(bytes);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, count);
        output.Write(bytes[..4]);
        output.Write(EncodedTensorFormat.FooterMagic);
        return output.ToArray();
    }
}
