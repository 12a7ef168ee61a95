using ZipLlm.Domain;

namespace ZipLlm.Store;

/// <summary>
/// Decoded chunks of stored objects, shared by every reader of a long-lived process (a server's requests, a mount's
/// reads), bounded in bytes, least recently used out first. A chunk is the unit the codec decodes (4 MiB at most), so
/// a client's many small ranges in one chunk, and every finetune whose deltas need the same base chunk, decode it once.
/// </summary>
/// <remarks>
/// Entries are arrays of exactly the chunk's length, never written again once added: a reader that got one may copy
/// from it for as long as it likes, evicted or not (the collector frees it once the last reader is done). Only decoded
/// bytes that passed their chunk's checksum are ever added.
/// </remarks>
internal sealed class DecodedChunkCache
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(ContentHash Object, long Chunk), LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _byUse = []; // most recently used first
    private long _bytes;
    private long _hits;
    private long _misses;

    /// <summary>A cache of at most <paramref name="capacityBytes"/> bytes of chunks (0: caches nothing).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacityBytes"/> is negative.</exception>
    public DecodedChunkCache(long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacityBytes);
        CapacityBytes = capacityBytes;
    }

    /// <summary>Most bytes of chunks kept.</summary>
    public long CapacityBytes { get; }

    /// <summary>Bytes of chunks kept now.</summary>
    public long Bytes
    {
        get
        {
            lock (_gate)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Look-ups that found their chunk, and those that did not.</summary>
    public (long Hits, long Misses) Counts
    {
        get
        {
            lock (_gate)
            {
                return (_hits, _misses);
            }
        }
    }

    /// <summary>The decoded chunk <paramref name="chunk"/> of <paramref name="hash"/>, when kept.</summary>
    public bool TryGet(ContentHash hash, long chunk, out byte[] bytes)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((hash, chunk), out LinkedListNode<Entry>? node))
            {
                _byUse.Remove(node);
                _byUse.AddFirst(node);
                _hits++;
                bytes = node.Value.Bytes;
                return true;
            }
            _misses++;
        }
        bytes = [];
        return false;
    }

    /// <summary>
    /// Keeps <paramref name="bytes"/> (which the caller must never write again) as chunk <paramref name="chunk"/> of
    /// <paramref name="hash"/>, evicting the least recently used chunks to make room; a chunk larger than the whole
    /// cache is not kept.
    /// </summary>
    public void Add(ContentHash hash, long chunk, byte[] bytes)
    {
        if (bytes.Length > CapacityBytes)
        {
            return;
        }
        lock (_gate)
        {
            if (_entries.ContainsKey((hash, chunk)))
            {
                return;
            }
            while (_bytes + bytes.Length > CapacityBytes && _byUse.Last is { } oldest)
            {
                _byUse.RemoveLast();
                _entries.Remove(oldest.Value.Key);
                _bytes -= oldest.Value.Bytes.Length;
            }
            _entries[(hash, chunk)] = _byUse.AddFirst(new Entry((hash, chunk), bytes));
            _bytes += bytes.Length;
        }
    }

    private sealed record Entry((ContentHash Object, long Chunk) Key, byte[] Bytes);
}
