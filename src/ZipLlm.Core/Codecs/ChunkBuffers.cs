using System.Buffers;

namespace ZipLlm.Codecs;

/// <summary>
/// The pool every chunk-sized buffer of the codecs comes from. Not <see cref="ArrayPool{T}.Shared"/>: that pool
/// keeps a buffer per thread that last returned one, so a run that touched more thread-pool threads (a longer one)
/// stranded more 4 MiB buffers where no other thread could reuse them, and peak memory crept up with the model's
/// size (restore at 2 threads: +18 MB for a model twice the size). Here every returned buffer is free for any thread,
/// so the peak follows the buffers in flight at once, which the thread count bounds.
/// </summary>
internal static class ChunkBuffers
{
    // Large enough for a chunk of the largest chunk size together with its worst-case encoding.
    private const int MaxBufferLength = 2 * EncodedTensorFormat.MaxChunkSize;

    /// <summary>The pool.</summary>
    public static ArrayPool<byte> Pool { get; } = ArrayPool<byte>.Create(MaxBufferLength, maxArraysPerBucket: 64);
}
