namespace ZipLlm.Safetensors;

/// <summary>
/// A validated safetensors header: the exact header bytes as they appear in the file (so a
/// writer can reproduce the file byte for byte), the tensors in data order, and the metadata.
/// <para>
/// Reading and validating a header is in <c>SafetensorsHeader.Read.cs</c>; building and writing one in
/// <c>SafetensorsHeader.Write.cs</c>: the writer's output goes through the reader's validation, so they cannot drift.
/// </para>
/// </summary>
internal sealed partial class SafetensorsHeader
{
    private SafetensorsHeader(byte[] headerBytes, IReadOnlyList<TensorInfo> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        HeaderBytes = headerBytes;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The JSON header exactly as stored (padding included), without the length prefix.</summary>
    public byte[] HeaderBytes { get; }

    /// <summary>Tensors sorted by their offset in the data section.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> map, or <see langword="null"/> when the header has none.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; }

    /// <summary>Offset of the data section from the start of the file.</summary>
    public long DataOffset => SafetensorsFormat.LengthPrefixSize + HeaderBytes.LongLength;

    /// <summary>Byte length of the data section (the tensors packed end to end).</summary>
    public long DataLength => Tensors.Count == 0 ? 0 : Tensors[^1].End;

    /// <summary>Total length of the file this header describes.</summary>
    public long FileLength => DataOffset + DataLength;
}
