using ZipLlm.Codecs;
using ZipLlm.Domain;
using ZipLlm.Store.Backends;

namespace ZipLlm.Store;

/// <summary>
/// The immutable objects of a store, named by the SHA-256 of their original bytes. Every object is
/// an encoded tensor (<see cref="EncodedTensorFormat"/>); a delta names its base object in its reference.
/// Their bytes rest in the store's <see cref="IStoreBackend"/>.
/// </summary>
internal sealed class ObjectStore(IStoreBackend backend)
{
    /// <summary>Longest chain of deltas followed to reach a solo object; guards against cycles in a corrupt store.</summary>
    public const int MaxDeltaDepth = 16;

    /// <summary>Where the objects' bytes rest.</summary>
    public IStoreBackend Backend { get; } = backend;

    /// <summary>Whether the object is stored (a FIFO or a folder in its place is no object, and is replaced when written).</summary>
    public bool Contains(ContentHash hash) => Backend.StatObject(hash) is not null;

    /// <summary>Bytes the object takes at rest (0 when missing).</summary>
    public long SizeOf(ContentHash hash) => Backend.StatObject(hash)?.Length ?? 0;

    /// <summary>Writes the object atomically; a concurrent writer of the same object simply replaces it with equal content.</summary>
    /// <returns>Bytes written.</returns>
    public long Write(ContentHash hash, Action<Stream> write)
    {
        using IObjectUpload upload = Backend.CreateObject(hash);
        write(upload.Stream);
        return upload.Commit();
    }

    /// <summary>Every object in the store.</summary>
    public IEnumerable<ContentHash> Enumerate() => Backend.ListObjects().Select(o => o.Hash);

    /// <summary>Every object in the store, with its length and write time, from the listing alone.</summary>
    public IEnumerable<ListedObject> List() => Backend.ListObjects();

    /// <summary>Objects reused after this age are refreshed (see <see cref="Freshen"/>); younger ones already count as new.</summary>
    public static readonly TimeSpan RefreshAge = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Counts a stored object that a new model reuses as written now when it is older than <see cref="RefreshAge"/>,
    /// so gc's <c>--grace</c> protects it as it protects the objects the run writes (an object written in 2020 and
    /// reused today is not "old" to a compress still running).
    /// </summary>
    /// <exception cref="IOException">The store cannot be reached.</exception>
    public void Freshen(ContentHash hash, DateTimeOffset now)
    {
        if (Backend.StatObject(hash) is { } stat && now - stat.WrittenAt > RefreshAge)
        {
            Backend.RefreshObject(hash);
        }
    }

    /// <summary>Deletes the object if it exists.</summary>
    public void Delete(ContentHash hash) => Backend.DeleteObject(hash);

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

    /// <summary>Opens objects for reading, in a read session of its own (bounded open files, for a folder).</summary>
    public ObjectReader OpenReader() => new(Backend.OpenReadSession(), ownsSession: true);

    /// <summary>Opens objects for reading through <paramref name="session"/>, which several readers may share.</summary>
    internal ObjectReader OpenReader(IObjectReadSession session) => new(session, ownsSession: false);

    /// <summary>
    /// Opens objects for reading in a read session of its own, the bases of deltas read through <paramref name="cache"/>
    /// (a long-lived reader's: a server's, a mount's).
    /// </summary>
    internal ObjectReader OpenReader(DecodedChunkCache cache) => new(Backend.OpenReadSession(), ownsSession: true, cache);

    /// <summary>
    /// Opens objects and wires each delta to its base. Objects are read through the backend's read session, so a
    /// reader of any number of objects holds a bounded number of files (or connections) open.
    /// Every failure to read an object back is a <see cref="StoreDamageException"/> naming it.
    /// </summary>
    public sealed class ObjectReader : IDisposable
    {
        private readonly Dictionary<ContentHash, EncodedTensor> _open = [];
        private readonly IObjectReadSession _session;
        private readonly bool _ownsSession;
        private readonly Lock _gate = new();
        private readonly DecodedChunkCache? _cache;

        internal ObjectReader(IObjectReadSession session, bool ownsSession, DecodedChunkCache? cache = null)
        {
            _session = session;
            _ownsSession = ownsSession;
            _cache = cache;
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
                    IChunkSource baseSource = _cache is null ? ResizedChunkSource.AtLength(baseTensor, tensor.Length)
                        : Resized(new CachedChunkSource(baseHash, baseTensor, baseTensor.ChunkSize, _cache), baseTensor, tensor.Length);
                    tensor.Base = new Damage.Source(baseHash, baseSource, baseTensor.ChunkSize);
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

        private static IChunkSource Resized(IChunkSource cached, EncodedTensor baseTensor, long length) =>
            baseTensor.Length == length ? cached : new ResizedChunkSource(cached, baseTensor.ChunkSize, length);

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
            IObjectContent content = Damage.Guard(hash, () => _session.Open(hash));
            void Read(long offset, Span<byte> destination)
            {
                try
                {
                    content.Read(offset, destination);
                }
                catch (EndOfStreamException ex)
                {
                    throw new StoreDamageException(null, null, hash, "the object is shorter than its index says (truncated or replaced)", ex);
                }
            }
            return Damage.Guard(hash, () => EncodedTensor.Open(name, Read, content.Length));
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            lock (_gate)
            {
                _open.Clear();
            }
            if (_ownsSession)
            {
                _session.Dispose();
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
