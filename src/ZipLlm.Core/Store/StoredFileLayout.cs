using System.Buffers.Binary;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;

namespace ZipLlm.Store;

/// <summary>
/// Where each byte of a stored file comes from, laid out as restore writes the file: a file stored whole is its one
/// object; a safetensors file is its length prefix and header (held here: small), then each tensor's object in data
/// order, with no gap. Segment <c>i</c> covers <c>[Starts[i], Starts[i + 1])</c> of the file and is <c>Objects[i]</c>.
/// </summary>
internal sealed class StoredFileLayout
{
    private StoredFileLayout(StoredFile file, byte[] head, long[] starts, ContentHash[] objects)
    {
        File = file;
        Head = head;
        Starts = starts;
        Objects = objects;
    }

    /// <summary>The file, as its manifest records it.</summary>
    public StoredFile File { get; }

    /// <summary>The file's first bytes, held decoded: a safetensors file's length prefix and header; empty for a file stored whole.</summary>
    public byte[] Head { get; }

    /// <summary>Where each segment starts in the file, and (last) where the file ends.</summary>
    public long[] Starts { get; }

    /// <summary>The object each segment is.</summary>
    public ContentHash[] Objects { get; }

    /// <summary>The file's length.</summary>
    public long Length => File.Size;

    /// <summary>
    /// The layout of <paramref name="file"/> of <paramref name="modelId"/>; a safetensors file's stored header is decoded
    /// (on <paramref name="pool"/>'s workers: the caller must not be one of them) and checked against the manifest.
    /// </summary>
    /// <exception cref="StoreDamageException">The stored header cannot be read back, or does not fit the manifest.</exception>
    public static StoredFileLayout Build(ModelId modelId, StoredFile file, ObjectStore.ObjectReader reader, WorkerPool pool)
    {
        if (file.Kind == StoredFileKind.Blob)
        {
            return new StoredFileLayout(file, [], [0, file.Size], [file.Object]);
        }
        StoredTensor[] tensors = file.Tensors!;
        byte[] headerBytes;
        try
        {
            headerBytes = TensorCodec.DecodeToArray(reader.OpenSource(file.Object), pool);
        }
        catch (StoreDamageException ex)
        {
            throw ex.InFile(modelId, file.Path);
        }
        // The header's tensors end exactly where the file does (the parse holds them to it).
        SafetensorsHeader header = ModelRestorer.ParseStoredHeader(modelId, file, headerBytes,
            file.Size - SafetensorsFormat.LengthPrefixSize - headerBytes.LongLength);
        byte[] head = new byte[SafetensorsFormat.LengthPrefixSize + headerBytes.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(head, (ulong)headerBytes.Length);
        headerBytes.CopyTo(head, SafetensorsFormat.LengthPrefixSize);
        // Tensors follow one another with no gap (restore writes them so); each object's length is checked when it is opened.
        var starts = new long[tensors.Length + 1];
        long at = head.Length;
        for (int i = 0; i < tensors.Length; i++)
        {
            starts[i] = at;
            at += header.Tensors[i].Length;
        }
        starts[^1] = at;
        return new StoredFileLayout(file, head, starts, tensors.Select(t => t.Object).ToArray());
    }

    /// <summary>The segment holding byte <paramref name="position"/> (at or past <see cref="Head"/>, before the end) and the position in it.</summary>
    public (int Segment, long InSegment) Locate(long position)
    {
        // The last segment whose start is at or before the position; empty tensors share a start with the next one.
        int segment = Array.BinarySearch(Starts, position);
        segment = segment >= 0 ? segment : ~segment - 1;
        while (Starts[segment + 1] <= position)
        {
            segment++;
        }
        return (segment, position - Starts[segment]);
    }

    /// <summary>Bytes segment <paramref name="segment"/> holds.</summary>
    public long SegmentLength(int segment) => Starts[segment + 1] - Starts[segment];
}
