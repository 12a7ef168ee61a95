using Microsoft.Win32.SafeHandles;
using ZipLlm.Domain;
using ZipLlm.IO;

namespace ZipLlm.Store.Backends;

/// <summary>
/// The open files of a store's objects, at most <see cref="Capacity"/> of them idle at once (least recently used
/// closed first) and reopened on demand: a file of 50,000 tensors would otherwise need 50,000 handles, past
/// the process's limit. A handle lent out is never closed under its user; it closes when the last one returns it.
/// Thread-safe. The folder backend's read session: objects opened through it hold no file between reads.
/// </summary>
internal sealed class ObjectHandleCache : IObjectReadSession
{
    /// <summary>
    /// Idle handles kept by default: far more than the objects a restore reads at once (about two chunks per
    /// worker), and far below the usual limit of 1024 open files.
    /// </summary>
    public const int DefaultCapacity = 64;

    private readonly StoreLayout _layout;
    private readonly Action<int>? _onDispose; // told the peak of open handles when the session ends
    private readonly Dictionary<ContentHash, Entry> _entries = [];
    private readonly LinkedList<Entry> _recency = []; // most recently used first
    private readonly Lock _gate = new();
    private int _open;
    private bool _disposed;

    /// <summary>A cache over the objects of the store laid out as <paramref name="layout"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The capacity is not positive.</exception>
    public ObjectHandleCache(StoreLayout layout, int capacity = DefaultCapacity, Action<int>? onDispose = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _layout = layout;
        Capacity = capacity;
        _onDispose = onDispose;
    }

    /// <inheritdoc/>
    public IObjectContent Open(ContentHash hash)
    {
        long length;
        using (Lease lease = Acquire(hash))
        {
            length = RandomAccess.GetLength(lease.Handle);
        }
        return new FolderObject(this, hash, length);
    }

    /// <summary>An object of the folder: each read borrows its file from the cache, which reopens it when it was closed meanwhile.</summary>
    private sealed class FolderObject(ObjectHandleCache cache, ContentHash hash, long length) : IObjectContent
    {
        private readonly string _name = $"object {hash.Hex}";

        public long Length { get; } = length;

        public void Read(long offset, Span<byte> destination)
        {
            using Lease lease = cache.Acquire(hash);
            PositionalRead.ReadExactly(lease.Handle, destination, offset, _name);
        }
    }

    /// <summary>Handles kept open when nobody uses them.</summary>
    public int Capacity { get; }

    /// <summary>Handles open now.</summary>
    public int OpenCount
    {
        get
        {
            lock (_gate)
            {
                return _open;
            }
        }
    }

    /// <summary>Most handles ever open at once.</summary>
    public int PeakOpenCount { get; private set; }

    /// <summary>Lends the open file of the object <paramref name="hash"/>, opening it when it is not open.</summary>
    /// <exception cref="StoreDamageException">The object is missing or is not a regular file.</exception>
    /// <exception cref="IOException">It cannot be opened (permissions, no handles left).</exception>
    public Lease Acquire(ContentHash hash)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_entries.TryGetValue(hash, out Entry? entry))
            {
                entry.Users++;
                _recency.Remove(entry.Node);
                _recency.AddFirst(entry.Node);
                return new Lease(this, entry);
            }
        }
        // Opened outside the lock so that one slow open does not stall every reader; a race only opens a file twice.
        SafeFileHandle handle = OpenObject(hash);
        lock (_gate)
        {
            if (_disposed || _entries.ContainsKey(hash))
            {
                handle.Dispose();
                ObjectDisposedException.ThrowIf(_disposed, this);
                Entry existing = _entries[hash];
                existing.Users++;
                _recency.Remove(existing.Node);
                _recency.AddFirst(existing.Node);
                return new Lease(this, existing);
            }
            var entry = new Entry(hash, handle);
            entry.Users = 1;
            _entries.Add(hash, entry);
            _recency.AddFirst(entry.Node);
            _open++;
            PeakOpenCount = Math.Max(PeakOpenCount, _open);
            EvictBeyondCapacity();
            return new Lease(this, entry);
        }
    }

    private SafeFileHandle OpenObject(ContentHash hash)
    {
        string path = _layout.ObjectPath(hash);
        try
        {
            return Posix.OpenRegularFileForReading(path, $"object {hash.Hex}");
        }
        catch (FileNotFoundException ex)
        {
            throw new StoreDamageException(null, null, hash, "the object is missing from the store", ex);
        }
        catch (InvalidDataException ex)
        {
            throw new StoreDamageException(null, null, hash, $"the object is a {Posix.Describe(Posix.Lstat(path).Kind)}, not a regular file", ex);
        }
    }

    private void EvictBeyondCapacity()
    {
        // Idle handles go first, oldest first; one in use is only marked, and closes when its last user is done.
        for (LinkedListNode<Entry>? node = _recency.Last; node is not null && _entries.Count > Capacity;)
        {
            LinkedListNode<Entry>? previous = node.Previous;
            if (node.Value.Users == 0)
            {
                Remove(node.Value);
            }
            node = previous;
        }
    }

    private void Remove(Entry entry)
    {
        _entries.Remove(entry.Hash);
        _recency.Remove(entry.Node);
        entry.Evicted = true;
        if (entry.Users == 0)
        {
            Close(entry);
        }
    }

    private void Close(Entry entry)
    {
        entry.Handle.Dispose();
        _open--;
    }

    private void Release(Entry entry)
    {
        lock (_gate)
        {
            entry.Users--;
            if (entry.Users > 0)
            {
                return;
            }
            if (entry.Evicted)
            {
                Close(entry);
            }
            else
            {
                EvictBeyondCapacity();
            }
        }
    }

    /// <summary>Closes every idle handle; handles still lent out close when they are returned.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            foreach (Entry entry in _entries.Values.ToList())
            {
                Remove(entry);
            }
        }
        _onDispose?.Invoke(PeakOpenCount);
    }

    /// <summary>An open object file lent to one reader; dispose it to give it back.</summary>
    public readonly struct Lease : IDisposable
    {
        private readonly ObjectHandleCache _cache;
        private readonly Entry _entry;

        internal Lease(ObjectHandleCache cache, Entry entry)
        {
            _cache = cache;
            _entry = entry;
        }

        /// <summary>The open file.</summary>
        public SafeFileHandle Handle => _entry.Handle;

        /// <inheritdoc/>
        public void Dispose() => _cache?.Release(_entry);
    }

    internal sealed class Entry
    {
        public Entry(ContentHash hash, SafeFileHandle handle)
        {
            Hash = hash;
            Handle = handle;
            Node = new LinkedListNode<Entry>(this);
        }

        public ContentHash Hash { get; }

        public SafeFileHandle Handle { get; }

        public LinkedListNode<Entry> Node { get; }

        public int Users { get; set; }

        public bool Evicted { get; set; }
    }
}
