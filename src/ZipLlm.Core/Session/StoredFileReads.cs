using System.Collections.Concurrent;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;

namespace ZipLlm.Session;

/// <summary>
/// Reads of stored files at any offset, awaited, for a long-lived process with many readers (a server's requests, a
/// mount's reads): each chunk a read needs comes from the session's <see cref="DecodedChunkCache"/> or is decoded on the
/// session's workers — once, however many readers want it at the same moment — and no thread-pool thread ever waits.
/// </summary>
/// <remarks>
/// One of these lives while the store lock it reads under is held (one epoch of it): its open objects and file layouts
/// may name objects that a remove or gc deletes once the lock is let go. The decoded chunks outlive it: an object's
/// name is the hash of its bytes, so a chunk once decoded and checked is right for as long as the name is read.
/// </remarks>
internal sealed class StoredFileReads : IDisposable
{
    private readonly StoreSession _session;
    private readonly DecodedChunkCache _cache;
    private readonly ObjectStore.ObjectReader _reader;
    private readonly ConcurrentDictionary<(ModelId Model, string Path), Task<StoredFileLayout>> _layouts = new();
    private readonly ConcurrentDictionary<ContentHash, Task<IChunkSource>> _sources = new();
    private readonly ConcurrentDictionary<(ContentHash Object, long Chunk), Task<byte[]>> _decoding = new();

    /// <summary>Reads of <paramref name="session"/>'s store, through <paramref name="cache"/>.</summary>
    public StoredFileReads(StoreSession session, DecodedChunkCache cache, long epoch)
    {
        _session = session;
        _cache = cache;
        Epoch = epoch;
        _reader = session.Store.Objects.OpenReader(cache);
    }

    /// <summary>The epoch of the store lock these reads are under.</summary>
    public long Epoch { get; }

    /// <summary>
    /// Copies bytes of <paramref name="file"/> of <paramref name="modelId"/> from <paramref name="offset"/> into
    /// <paramref name="destination"/> until it is full or the file ends.
    /// </summary>
    /// <returns>Bytes copied: fewer than asked only at the end of the file, 0 at or past it.</returns>
    /// <exception cref="StoreDamageException">A chunk or the stored header cannot be read back as recorded (naming model, file and object).</exception>
    public async ValueTask<int> ReadAsync(ModelId modelId, StoredFile file, long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= file.Size || destination.IsEmpty)
        {
            return 0;
        }
        StoredFileLayout layout = await LayoutAsync(modelId, file).ConfigureAwait(false);
        int done = 0;
        while (done < destination.Length && offset + done < layout.Length)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long position = offset + done;
            if (position < layout.Head.Length)
            {
                int n = (int)Math.Min(destination.Length - done, layout.Head.Length - position);
                layout.Head.AsMemory((int)position, n).CopyTo(destination[done..]);
                done += n;
                continue;
            }
            (int segment, long inSegment) = layout.Locate(position);
            ContentHash hash = layout.Objects[segment];
            try
            {
                IChunkSource source = await SourceAsync(modelId, layout, segment, cancellationToken).ConfigureAwait(false);
                int chunkSize = source.ChunkSize > 0 ? source.ChunkSize : _session.Workers.Options.ChunkSize;
                long chunk = inSegment / chunkSize;
                byte[] bytes = await ChunkAsync(hash, source, chunk, chunkSize, cancellationToken).ConfigureAwait(false);
                int at = (int)(inSegment - chunk * chunkSize);
                int count = Math.Min(destination.Length - done, bytes.Length - at);
                bytes.AsMemory(at, count).CopyTo(destination[done..]);
                done += count;
            }
            catch (StoreDamageException ex)
            {
                throw ex.InFile(modelId, file.Path);
            }
        }
        return done;
    }

    /// <summary>Closes the objects these reads opened.</summary>
    public void Dispose() => _reader.Dispose();

    private async Task<StoredFileLayout> LayoutAsync(ModelId modelId, StoredFile file)
    {
        var key = (modelId, file.Path);
        // The header decode waits for its chunks on the workers, so it runs on a thread of its own, never on one of them.
        Task<StoredFileLayout> layout = _layouts.GetOrAdd(key,
            _ => _session.RunAsync("layout", () => StoredFileLayout.Build(modelId, file, _reader, _session.Workers)));
        try
        {
            return await layout.ConfigureAwait(false);
        }
        catch (Exception) when (layout.IsFaulted || layout.IsCanceled)
        {
            // A failure is not kept: a later read tries again (and fails the same way, if the damage is still there).
            _layouts.TryRemove(new KeyValuePair<(ModelId, string), Task<StoredFileLayout>>(key, layout));
            throw;
        }
    }

    private async Task<IChunkSource> SourceAsync(ModelId modelId, StoredFileLayout layout, int segment, CancellationToken cancellationToken)
    {
        ContentHash hash = layout.Objects[segment];
        Task<IChunkSource> opening = _sources.GetOrAdd(hash, h => _session.Workers.RunAsync(_ => _reader.OpenSource(h), CancellationToken.None));
        IChunkSource source;
        try
        {
            source = await opening.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        }
        catch (Exception) when (opening.IsFaulted)
        {
            _sources.TryRemove(new KeyValuePair<ContentHash, Task<IChunkSource>>(hash, opening));
            throw;
        }
        long expected = layout.SegmentLength(segment);
        if (source.Length != expected)
        {
            throw new StoreDamageException(modelId, layout.File.Path, hash, $"the object holds {source.Length} bytes where the file needs {expected} there");
        }
        return source;
    }

    private async Task<byte[]> ChunkAsync(ContentHash hash, IChunkSource source, long chunk, int chunkSize, CancellationToken cancellationToken)
    {
        if (_cache.TryGet(hash, chunk, out byte[] kept))
        {
            return kept;
        }
        var key = (hash, chunk);
        // Decoded once, whoever asks meanwhile; a reader that gives up does not cancel the decode the others wait for.
        Task<byte[]> decoding = _decoding.GetOrAdd(key, _ => _session.Workers.RunAsync(codec =>
        {
            long start = chunk * chunkSize;
            byte[] bytes = GC.AllocateUninitializedArray<byte>((int)Math.Min(chunkSize, source.Length - start));
            source.ReadChunk(start, bytes, codec);
            _cache.Add(hash, chunk, bytes);
            return bytes;
        }, CancellationToken.None));
        try
        {
            return await decoding.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        }
        finally
        {
            if (decoding.IsCompleted)
            {
                _decoding.TryRemove(new KeyValuePair<(ContentHash, long), Task<byte[]>>(key, decoding));
            }
        }
    }
}
