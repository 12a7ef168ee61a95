namespace ZipLlm.Codecs;

/// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="offset"/>; must be safe to call from several threads.</summary>
/// <exception cref="EndOfStreamException">The source ends before the range does.</exception>
internal delegate void ReadAt(long offset, Span<byte> destination);

/// <summary>Something that yields a tensor's original bytes chunk by chunk: a raw tensor, or an encoded one.</summary>
internal interface IChunkSource
{
    /// <summary>Byte length of the tensor.</summary>
    long Length { get; }

    /// <summary>
    /// The chunking every read must follow (an encoded tensor can only be read chunk by chunk as it was
    /// encoded), or 0 when any chunk size the caller picks will do.
    /// </summary>
    int ChunkSize => 0;

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
internal sealed class RawChunkSource(long length, ReadAt read) : IChunkSource
{
    /// <inheritdoc/>
    public long Length { get; } = length;

    /// <summary>A source over bytes held in memory.</summary>
    public static RawChunkSource FromMemory(ReadOnlyMemory<byte> bytes) =>
        new(bytes.Length, (offset, destination) => bytes.Span.Slice(checked((int)offset), destination.Length).CopyTo(destination));

    /// <inheritdoc/>
    public void ReadChunk(long offset, Span<byte> destination, ChunkCodec codec) => read(offset, destination);
}

/// <summary>
/// A base seen at another length: cut short, or extended with zero bytes. It lets a tensor that grew rows
/// (a vocabulary extension) be stored as a delta against its base: the shared rows XOR to small values, and
/// the new rows XOR with zeros, which leaves them as they are.
/// </summary>
internal sealed class ResizedChunkSource : IChunkSource
{
    private readonly IChunkSource _inner;
    private readonly int _innerChunkSize;

    /// <summary>An encoded base as <paramref name="length"/> bytes: itself at its own length, else resized.</summary>
    public static IChunkSource AtLength(EncodedTensor inner, long length) =>
        inner.Length == length ? inner : new ResizedChunkSource(inner, inner.ChunkSize, length);

    /// <summary>Shows <paramref name="inner"/>, chunked by <paramref name="innerChunkSize"/>, as <paramref name="length"/> bytes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The length is negative or the chunk size is invalid.</exception>
    public ResizedChunkSource(IChunkSource inner, int innerChunkSize, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (!EncodedTensorFormat.IsValidChunkSize(innerChunkSize))
        {
            throw new ArgumentOutOfRangeException(nameof(innerChunkSize));
        }
        _inner = inner;
        _innerChunkSize = innerChunkSize;
        Length = length;
    }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    public void ReadChunk(long offset, Span<byte> destination, ChunkCodec codec)
    {
        int available = (int)Math.Clamp(_inner.Length - offset, 0, _innerChunkSize);
        if (available == destination.Length)
        {
            _inner.ReadChunk(offset, destination, codec);
            return;
        }
        destination.Clear();
        if (available == 0)
        {
            return;
        }
        ChunkBuffer chunk = codec.Buffers.Rent(available);
        try
        {
            _inner.ReadChunk(offset, chunk.AsSpan(0, available), codec);
            chunk.AsSpan(0, Math.Min(available, destination.Length)).CopyTo(destination);
        }
        finally
        {
            codec.Buffers.Return(chunk);
        }
    }
}
