using ZipLlm.Codecs;
using ZipLlm.Domain;

namespace ZipLlm.Store;

/// <summary>
/// An object's chunks through a <see cref="DecodedChunkCache"/>: a chunk read whole is served from the cache when kept,
/// else decoded (checksum checked) and kept. What a delta's decode reads of its base goes through one, so the many
/// finetunes of one base, and the many reads of one finetune, decode each base chunk once.
/// </summary>
internal sealed class CachedChunkSource(ContentHash hash, IChunkSource inner, int chunkSize, DecodedChunkCache cache) : IChunkSource
{
    /// <inheritdoc/>
    public long Length => inner.Length;

    /// <inheritdoc/>
    public int ChunkSize => chunkSize;

    /// <inheritdoc/>
    public void ReadChunk(long offset, Span<byte> destination, ChunkCodec codec)
    {
        if (chunkSize <= 0 || offset % chunkSize != 0)
        {
            inner.ReadChunk(offset, destination, codec);
            return;
        }
        long chunk = offset / chunkSize;
        if (cache.TryGet(hash, chunk, out byte[] kept) && kept.Length == destination.Length)
        {
            kept.CopyTo(destination);
            return;
        }
        inner.ReadChunk(offset, destination, codec);
        // Not ToArray: that clears the new array first, and a chunk is 4 MiB.
        byte[] copy = GC.AllocateUninitializedArray<byte>(destination.Length);
        destination.CopyTo(copy);
        cache.Add(hash, chunk, copy);
    }
}
