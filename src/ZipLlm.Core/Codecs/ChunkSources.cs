namespace ZipLlm.Codecs;

/// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="offset"/>; must be safe to call from several threads.</summary>
/// <exception cref="EndOfStreamException">The source ends before the range does.</exception>
public delegate void ReadAt(long offset, Span<byte> destination);

/// <summary>Something that yields a tensor's original bytes chunk by chunk: a raw tensor, or an encoded one.</summary>
public interface IChunkSource
{
    /// <summary>Byte length of the tensor.</summary>
    long Length { get; }

    /// <summary>
    /// Fills <paramref name="destination"/> with the tensor's bytes starting at
    /// <paramref name="offset"/>, a multiple of the chunk size in use. Thread-safe.
    /// </summary>
    /// <param name="offset">Start of the chunk in the tensor.</param>
    /// <param name="destination">The chunk's bytes: the chunk size, or less for the last chunk.</param>
    /// <param name="codec">The calling worker's codec, for sources that must decode.</param>
    void ReadChunk(long offset, Span<byte> destination, ChunkCodec codec);
}

/// <summary>A tensor whose bytes are read as they are (from a safetensors file or a buffer).</summary>
/// <param name="length">Byte length of the tensor.</param>
/// <param name="read">Positional, thread-safe reader of the tensor's bytes.</param>
public sealed class RawChunkSource(long length, ReadAt read) : IChunkSource
{
    /// <inheritdoc/>
    public long Length { get; } = length;

    /// <summary>A source over bytes held in memory.</summary>
    public static RawChunkSource FromMemory(ReadOnlyMemory<byte> bytes) =>
        new(bytes.Length, (offset, destination) => bytes.Span.Slice(checked((int)offset), destination.Length).CopyTo(destination));

    /// <inheritdoc/>
    public void ReadChunk(long offset, Span<byte> destination, ChunkCodec codec) => read(offset, destination);
}
