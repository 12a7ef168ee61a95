using ZipLlm.Codecs;
using ZipLlm.IO;

namespace ZipLlm.Store;

/// <summary>
/// The immutable objects of a store, named by the SHA-256 of their original bytes. Every object is
/// an encoded tensor (<see cref="EncodedTensorFormat"/>); a delta names its base object in its reference.
/// </summary>
public sealed class ObjectStore(StoreLayout layout)
{
    /// <summary>Longest chain of deltas followed to reach a solo object; guards against cycles in a corrupt store.</summary>
    public const int MaxDeltaDepth = 16;

    /// <summary>The store's layout.</summary>
    public StoreLayout Layout { get; } = layout;

    /// <summary>Whether the object exists as a regular file (a FIFO or a folder in its place is no object, and is replaced when written).</summary>
    public bool Contains(ContentHash hash) => Posix.Lstat(Layout.ObjectPath(hash)).Kind == EntryKind.File;

    /// <summary>Bytes the object takes on disk (0 when missing).</summary>
    public long SizeOf(ContentHash hash)
    {
        var info = new FileInfo(Layout.ObjectPath(hash));
        return info.Exists ? info.Length : 0;
    }

    /// <summary>Writes the object atomically; a concurrent writer of the same object simply replaces it with equal content.</summary>
    /// <returns>Bytes written.</returns>
    public long Write(ContentHash hash, Action<Stream> write)
    {
        using var writer = new AtomicFileWriter(Layout.ObjectPath(hash), Layout.TempDir);
        write(writer.Stream);
        // Objects are made durable together, by one file-system sync before a manifest names them.
        return writer.Commit(durable: false);
    }

    /// <summary>Every object in the store.</summary>
    public IEnumerable<ContentHash> Enumerate()
    {
        if (!Directory.Exists(Layout.ObjectsDir))
        {
            yield break;
        }
        foreach (string file in Directory.EnumerateFiles(Layout.ObjectsDir, "*", SearchOption.AllDirectories))
        {
            if (ContentHash.TryParse(Path.GetFileName(file), out ContentHash hash))
            {
                yield return hash;
            }
        }
    }

    /// <summary>Deletes the object if it exists.</summary>
    public void Delete(ContentHash hash) => AtomicFile.TryDelete(Layout.ObjectPath(hash));

    /// <summary>The base a delta object names, or null for a solo object; reads the object's header and chunk index, not its chunks.</summary>
    /// <exception cref="StoreDamageException">The object is missing, not a regular file, or its header is corrupt.</exception>
    public ContentHash? ReadBaseReference(ContentHash hash)
    {
        using ObjectReader reader = OpenReader();
        EncodedTensor tensor = reader.OpenWithoutBase(hash);
        return tensor.Kind == EncodedTensorKind.Delta ? Damage.Guard(hash, () => ParseReference(tensor, $"object {hash}")) : (ContentHash?)null;
    }

    private static ContentHash ParseReference(EncodedTensor tensor, string name)
    {
        if (tensor.Reference.Length != ContentHash.Size)
        {
            throw new InvalidDataException($"{name}: a delta's base reference is {tensor.Reference.Length} bytes, not a SHA-256.");
        }
        return ContentHash.FromDigest(tensor.Reference);
    }

    /// <summary>Opens objects for reading, with at most <see cref="ObjectHandleCache.DefaultCapacity"/> idle files open at once.</summary>
    public ObjectReader OpenReader() => new(this, new ObjectHandleCache(this), ownsHandles: true);

    /// <summary>Opens objects for reading through <paramref name="handles"/>, which several readers may share.</summary>
    internal ObjectReader OpenReader(ObjectHandleCache handles) => new(this, handles, ownsHandles: false);

    /// <summary>
    /// Opens objects and wires each delta to its base. Object files are opened on demand, through a bounded
    /// cache of handles, so a reader of any number of objects holds a bounded number of files open.
    /// Every failure to read an object back is a <see cref="StoreDamageException"/> naming it.
    /// </summary>
    public sealed class ObjectReader : IDisposable
    {
        private readonly ObjectStore _store;
        private readonly Dictionary<ContentHash, EncodedTensor> _open = [];
        private readonly ObjectHandleCache _handles;
        private readonly bool _ownsHandles;
        private readonly Lock _gate = new();

        internal ObjectReader(ObjectStore store, ObjectHandleCache handles, bool ownsHandles)
        {
            _store = store;
            _handles = handles;
            _ownsHandles = ownsHandles;
        }

        /// <summary>Opens the object named <paramref name="hash"/>, with the chain of bases a delta needs.</summary>
        /// <exception cref="StoreDamageException">
        /// The object, or a base it needs, is missing, not a regular file, truncated, corrupt or of an unsupported
        /// format, or the chain of deltas is too deep. Reading its chunks later fails the same way.
        /// </exception>
        /// <exception cref="IOException">An object cannot be opened for another reason (permissions, no handles left).</exception>
        public EncodedTensor Open(ContentHash hash) => Open(hash, 0);

        internal EncodedTensor OpenWithoutBase(ContentHash hash) => OpenFile(hash);

        private EncodedTensor Open(ContentHash hash, int depth)
        {
            lock (_gate)
            {
                if (_open.TryGetValue(hash, out EncodedTensor? cached))
                {
                    return cached;
                }
            }
            if (depth > MaxDeltaDepth)
            {
                throw new StoreDamageException(null, null, hash, $"the chain of deltas is deeper than {MaxDeltaDepth}");
            }
            EncodedTensor tensor = OpenFile(hash);
            if (tensor.Kind == EncodedTensorKind.Delta)
            {
                ContentHash baseHash = Damage.Guard(hash, () => ParseReference(tensor, $"object {hash}"));
                if (baseHash == hash)
                {
                    throw new StoreDamageException(null, null, hash, "a delta names itself as its base");
                }
                EncodedTensor baseTensor = Open(baseHash, depth + 1);
                try
                {
                    if (baseTensor.ChunkSize != tensor.ChunkSize)
                    {
                        throw new ArgumentException($"base chunk size {baseTensor.ChunkSize} differs from {tensor.ChunkSize}.");
                    }
                    // A base of another length (a tensor that grew or lost rows) is seen cut short or zero-extended.
                    // Its own failures name it, not the delta.
                    tensor.Base = new Damage.Source(baseHash, ResizedChunkSource.AtLength(baseTensor, tensor.Length), baseTensor.ChunkSize);
                }
                catch (ArgumentException ex)
                {
                    throw new StoreDamageException(null, null, hash, $"its base {baseHash.Hex} does not match it: {ex.Message}", ex);
                }
            }
            lock (_gate)
            {
                _open.TryAdd(hash, tensor);
                return _open[hash];
            }
        }

        /// <summary>
        /// A source of the object's original bytes whose every failure, its own or its bases', is a
        /// <see cref="StoreDamageException"/> naming the object to blame.
        /// </summary>
        /// <exception cref="StoreDamageException">The object cannot be opened (as <see cref="Open(ContentHash)"/>).</exception>
        internal IChunkSource OpenSource(ContentHash hash)
        {
            EncodedTensor tensor = Open(hash);
            return new Damage.Source(hash, tensor, tensor.ChunkSize);
        }

        private EncodedTensor OpenFile(ContentHash hash)
        {
            string name = $"object {hash.Hex}";
            long length;
            using (ObjectHandleCache.Lease lease = _handles.Acquire(hash))
            {
                length = Damage.Guard(hash, () => RandomAccess.GetLength(lease.Handle));
            }
            ObjectHandleCache handles = _handles;
            void Read(long offset, Span<byte> destination)
            {
                // Once per chunk: a lookup in the cache, and an open only when the handle was closed meanwhile.
                using ObjectHandleCache.Lease lease = handles.Acquire(hash);
                try
                {
                    PositionalRead.ReadExactly(lease.Handle, destination, offset, name);
                }
                catch (EndOfStreamException ex)
                {
                    throw new StoreDamageException(null, null, hash, "the object is shorter than its index says (truncated or replaced)", ex);
                }
            }
            return Damage.Guard(hash, () => EncodedTensor.Open(name, Read, length));
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            lock (_gate)
            {
                _open.Clear();
            }
            if (_ownsHandles)
            {
                _handles.Dispose();
            }
        }
    }

    /// <summary>Turns failures to read an object into <see cref="StoreDamageException"/>s that name it.</summary>
    private static class Damage
    {
        public static T Guard<T>(ContentHash hash, Func<T> read)
        {
            try
            {
                return read();
            }
            catch (Exception ex) when (ex is not StoreDamageException && StoreDamageException.IsDamage(ex))
            {
                throw new StoreDamageException(null, null, hash, Unprefixed(ex.Message, hash), ex);
            }
        }

        // The codec names the object in its own messages; the exception names it once, in front.
        private static string Unprefixed(string message, ContentHash hash)
        {
            string prefix = $"object {hash.Hex}: ";
            return (message.StartsWith(prefix, StringComparison.Ordinal) ? message[prefix.Length..] : message).TrimEnd('.');
        }

        /// <summary>An object's bytes, its failures named.</summary>
        public sealed class Source(ContentHash hash, IChunkSource inner, int chunkSize) : IChunkSource
        {
            public long Length => inner.Length;

            public int ChunkSize => chunkSize;

            public void ReadChunk(long offset, Span<byte> destination, ChunkCodec codec)
            {
                try
                {
                    inner.ReadChunk(offset, destination, codec);
                }
                catch (Exception ex) when (ex is not StoreDamageException && StoreDamageException.IsDamage(ex))
                {
                    throw new StoreDamageException(null, null, hash, Unprefixed(ex.Message, hash), ex);
                }
            }
        }
    }
}
