namespace ZipLlm.Codecs;

/// <summary>
/// A scratch buffer with one owner: rented from its <see cref="ChunkBufferPool"/> when first asked for, rented again larger
/// (its bytes not kept) when a longer span is asked for, and returned by <see cref="Dispose"/>. Not thread-safe, as
/// the coder that owns it is not.
/// </summary>
internal sealed class ScratchBuffer(ChunkBufferPool buffers) : IDisposable
{
    private ChunkBuffer? _buffer;

    /// <summary>The buffer's first <paramref name="length"/> bytes; a shorter buffer is first replaced by one long enough.</summary>
    public Span<byte> Get(int length)
    {
        if (_buffer is null || _buffer.Length < length)
        {
            Dispose();
            _buffer = buffers.Rent(length);
        }
        return _buffer.AsSpan(0, length);
    }

    /// <summary>Returns the buffer to the pool; a later <see cref="Get"/> rents one again.</summary>
    public void Dispose()
    {
        if (_buffer is not null)
        {
            buffers.Return(_buffer);
            _buffer = null;
        }
    }
}
