using System.Buffers.Binary;
using ZipLlm.Codecs;

namespace ZipLlm.Tests.TestSupport;

/// <summary>
/// Writes objects as format versions 1 and 2 laid them out, from a version 3 object whose chunks use nothing those
/// versions lacked (no rANS stream, no ordered difference, no base conversion, no F16 layout, and for version 1 no
/// sparse stream): version 3 moved the kind and the base reference from the header to the footer (with the conversion)
/// and added one byte a chunk (its transform); nothing else changed. So old objects are tested without old builds.
/// </summary>
internal static class LegacyObjects
{
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
