using System.Buffers.Binary;

namespace ZipLlm.Tools.BitxFileTool;

/// <summary>The header both BitX files start with (see <see cref="BitxFormat"/>); the two must agree.</summary>
/// <param name="Mode">How the finetune was paired with the base.</param>
/// <param name="ImageLength">Bytes of the delta image, which is as long as the finetune file.</param>
/// <param name="ChunkSize">Bytes of image per zstd frame pair.</param>
/// <param name="BaseLength">Bytes of the base file the image was made against.</param>
internal readonly record struct BitxHeader(BitxMode Mode, long ImageLength, int ChunkSize, long BaseLength)
{
    public long ChunkCount => BitxFormat.ChunkCount(ImageLength, ChunkSize);

    /// <summary>Byte length of chunk <paramref name="index"/> of the image.</summary>
    public int ChunkLength(long index) => (int)Math.Min(ChunkSize, ImageLength - index * ChunkSize);

    /// <summary>Writes the header as a skippable frame.</summary>
    public void Write(Stream output, BitxStream stream)
    {
        Span<byte> frame = stackalloc byte[BitxFormat.SkippableFrameHeaderSize + BitxFormat.HeaderPayloadSize];
        frame.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(frame, BitxFormat.SkippableFrameMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], BitxFormat.HeaderPayloadSize);
        Span<byte> p = frame[BitxFormat.SkippableFrameHeaderSize..];
        BitxFormat.HeaderMagic.CopyTo(p);
        p[4] = BitxFormat.Version;
        p[5] = (byte)stream;
        p[6] = (byte)Mode;
        BinaryPrimitives.WriteInt64LittleEndian(p[8..], ImageLength);
        BinaryPrimitives.WriteInt32LittleEndian(p[16..], ChunkSize);
        BinaryPrimitives.WriteInt64LittleEndian(p[24..], BaseLength);
        output.Write(frame);
    }

    /// <summary>Reads and validates the header frame of a BitX file that should hold <paramref name="expected"/>.</summary>
    /// <exception cref="InvalidDataException">The header is missing, malformed, or belongs to the other stream.</exception>
    /// <exception cref="NotSupportedException">The file was written by a newer format version.</exception>
    public static BitxHeader Read(ZstdFrameReader reader, BitxStream expected, string name)
    {
        ReadOnlySpan<byte> p = reader.ReadSkippableFrame(BitxFormat.SkippableFrameMagic, BitxFormat.HeaderPayloadSize, "BitX header");
        if (!p[..4].SequenceEqual(BitxFormat.HeaderMagic))
        {
            throw new InvalidDataException($"{name}: not a BitX file (bad header magic).");
        }
        if (p[4] != BitxFormat.Version)
        {
            throw new NotSupportedException($"{name}: BitX format version {p[4]} is not supported (this build reads {BitxFormat.Version}).");
        }
        if (p[5] != (byte)expected)
        {
            string other = p[5] == (byte)BitxStream.Exponent ? "exponent" : p[5] == (byte)BitxStream.SignMantissa ? "sign+mantissa" : $"unknown ({p[5]})";
            throw new InvalidDataException($"{name}: this file holds the {other} stream, not the {(expected == BitxStream.Exponent ? "exponent" : "sign+mantissa")} stream.");
        }
        byte mode = p[6];
        long imageLength = BinaryPrimitives.ReadInt64LittleEndian(p[8..]);
        int chunkSize = BinaryPrimitives.ReadInt32LittleEndian(p[16..]);
        long baseLength = BinaryPrimitives.ReadInt64LittleEndian(p[24..]);
        if (mode > (byte)BitxMode.Tensors || p[7] != 0 || BinaryPrimitives.ReadInt32LittleEndian(p[20..]) != 0)
        {
            throw new InvalidDataException($"{name}: BitX header has an unknown mode {mode} or non-zero reserved bytes.");
        }
        if (imageLength < 0 || baseLength < 0 || !BitxFormat.IsValidChunkSize(chunkSize))
        {
            throw new InvalidDataException($"{name}: BitX header is corrupt (image length {imageLength}, chunk size {chunkSize}, base length {baseLength}).");
        }
        return new BitxHeader((BitxMode)mode, imageLength, chunkSize, baseLength);
    }

    /// <summary>Writes the trailer frame: the chunk count and the digest of the finetune file.</summary>
    public static void WriteTrailer(Stream output, long chunkCount, ulong digest)
    {
        Span<byte> frame = stackalloc byte[BitxFormat.SkippableFrameHeaderSize + BitxFormat.TrailerPayloadSize];
        frame.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(frame, BitxFormat.SkippableFrameMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], BitxFormat.TrailerPayloadSize);
        Span<byte> p = frame[BitxFormat.SkippableFrameHeaderSize..];
        BitxFormat.TrailerMagic.CopyTo(p);
        BinaryPrimitives.WriteInt64LittleEndian(p[8..], chunkCount);
        BinaryPrimitives.WriteUInt64LittleEndian(p[16..], digest);
        output.Write(frame);
    }

    /// <summary>Reads the trailer frame and checks it ends the file.</summary>
    /// <returns>The recorded digest of the finetune file.</returns>
    /// <exception cref="InvalidDataException">The trailer is missing or malformed, or its chunk count differs.</exception>
    public static ulong ReadTrailer(ZstdFrameReader reader, long expectedChunks, string name)
    {
        ReadOnlySpan<byte> p = reader.ReadSkippableFrame(BitxFormat.SkippableFrameMagic, BitxFormat.TrailerPayloadSize, "BitX trailer");
        if (!p[..4].SequenceEqual(BitxFormat.TrailerMagic) || BinaryPrimitives.ReadInt32LittleEndian(p[4..]) != 0)
        {
            throw new InvalidDataException($"{name}: BitX trailer is corrupt.");
        }
        long chunks = BinaryPrimitives.ReadInt64LittleEndian(p[8..]);
        if (chunks != expectedChunks)
        {
            throw new InvalidDataException($"{name}: trailer records {chunks} chunks where the header implies {expectedChunks}.");
        }
        ulong digest = BinaryPrimitives.ReadUInt64LittleEndian(p[16..]);
        if (!reader.AtEnd())
        {
            throw new InvalidDataException($"{name}: unexpected bytes after the BitX trailer at byte {reader.Position}.");
        }
        return digest;
    }
}
