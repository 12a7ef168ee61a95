using Microsoft.Win32.SafeHandles;
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

    /// <summary>Whether the object exists.</summary>
    public bool Contains(ContentHash hash) => File.Exists(Layout.ObjectPath(hash));

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
    /// <exception cref="FileNotFoundException">The object is missing.</exception>
    /// <exception cref="InvalidDataException">The object's header is corrupt.</exception>
    public ContentHash? ReadBaseReference(ContentHash hash)
    {
        using ObjectReader reader = OpenReader();
        EncodedTensor tensor = reader.OpenWithoutBase(hash);
        return tensor.Kind == EncodedTensorKind.Delta ? ParseReference(tensor, $"object {hash}") : null;
    }

    private static ContentHash ParseReference(EncodedTensor tensor, string name)
    {
        if (tensor.Reference.Length != ContentHash.Size)
        {
            throw new InvalidDataException($"{name}: a delta's base reference is {tensor.Reference.Length} bytes, not a SHA-256.");
        }
        return ContentHash.FromDigest(tensor.Reference);
    }

    /// <summary>Opens objects for reading, keeping their files open until disposed.</summary>
    public ObjectReader OpenReader() => new(this);

    /// <summary>Opens objects and wires each delta to its base; disposing closes every file it opened.</summary>
    public sealed class ObjectReader : IDisposable
    {
        private readonly ObjectStore _store;
        private readonly Dictionary<ContentHash, EncodedTensor> _open = [];
        private readonly List<SafeFileHandle> _handles = [];
        private readonly Lock _gate = new();

        internal ObjectReader(ObjectStore store) => _store = store;

        /// <summary>Opens the object named <paramref name="hash"/>, with the chain of bases a delta needs.</summary>
        /// <exception cref="FileNotFoundException">The object, or a base it needs, is missing.</exception>
        /// <exception cref="InvalidDataException">An object is corrupt, or the chain of deltas is too deep.</exception>
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
                throw new InvalidDataException($"Object {hash}: chain of deltas deeper than {MaxDeltaDepth}; the store is corrupt.");
            }
            EncodedTensor tensor = OpenFile(hash);
            if (tensor.Kind == EncodedTensorKind.Delta)
            {
                ContentHash baseHash = ParseReference(tensor, $"object {hash}");
                if (baseHash == hash)
                {
                    throw new InvalidDataException($"Object {hash}: a delta names itself as its base.");
                }
                try
                {
                    EncodedTensor baseTensor = Open(baseHash, depth + 1);
                    if (baseTensor.ChunkSize != tensor.ChunkSize)
                    {
                        throw new ArgumentException($"base chunk size {baseTensor.ChunkSize} differs from {tensor.ChunkSize}.");
                    }
                    // A base of another length (a tensor that grew or lost rows) is seen cut short or zero-extended.
                    tensor.Base = ResizedChunkSource.AtLength(baseTensor, tensor.Length);
                }
                catch (ArgumentException ex)
                {
                    throw new InvalidDataException($"Object {hash}: its base {baseHash} does not match it: {ex.Message}", ex);
                }
            }
            lock (_gate)
            {
                _open.TryAdd(hash, tensor);
                return _open[hash];
            }
        }

        private EncodedTensor OpenFile(ContentHash hash)
        {
            string path = _store.Layout.ObjectPath(hash);
            SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, FileOptions.RandomAccess);
            }
            catch (FileNotFoundException ex)
            {
                throw new FileNotFoundException($"Object {hash} is missing from the store.", path, ex);
            }
            catch (DirectoryNotFoundException ex)
            {
                throw new FileNotFoundException($"Object {hash} is missing from the store.", path, ex);
            }
            lock (_gate)
            {
                _handles.Add(handle);
            }
            string name = $"object {hash}";
            return EncodedTensor.Open(name, (offset, destination) => PositionalRead.ReadExactly(handle, destination, offset, name), RandomAccess.GetLength(handle));
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            lock (_gate)
            {
                foreach (SafeFileHandle handle in _handles)
                {
                    handle.Dispose();
                }
                _handles.Clear();
                _open.Clear();
            }
        }
    }
}
