using System.Collections.Concurrent;
using ZipLlm.Domain;

namespace ZipLlm.Store.Backends;

/// <summary>
/// A store held in this process's memory: the folder backend's twin, for tests (of the engine, and of programs
/// that use the library) and for proving the seam, since the same test suite runs against both. Thread-safe;
/// nothing survives the process.
/// </summary>
internal sealed class MemoryBackend : IStoreBackend
{
    private readonly ConcurrentDictionary<ContentHash, (byte[] Bytes, DateTimeOffset WrittenAt)> _objects = new();
    private readonly ConcurrentDictionary<string, (byte[] Bytes, long Version)> _manifests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]> _catalog = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, LockState> _locks = new(StringComparer.Ordinal);
    private readonly Lock _formatGate = new();
    private byte[]? _format;
    private long _versions;

    /// <summary>When an object counts as written; tests move it to see grace periods at work.</summary>
    public Func<DateTimeOffset> Clock { get; init; } = () => DateTimeOffset.UtcNow;

    /// <inheritdoc/>
    public string Location => "memory:";

    /// <inheritdoc/>
    public string? LocalRoot => null;

    /// <inheritdoc/>
    public byte[]? ReadFormat()
    {
        lock (_formatGate)
        {
            return _format?.ToArray();
        }
    }

    /// <inheritdoc/>
    public void Create(ReadOnlySpan<byte> format)
    {
        lock (_formatGate)
        {
            _format ??= format.ToArray();
        }
    }

    /// <inheritdoc/>
    public ObjectStat? StatObject(ContentHash hash) =>
        _objects.TryGetValue(hash, out var entry) ? new ObjectStat(entry.Bytes.Length, entry.WrittenAt) : null;

    /// <inheritdoc/>
    public IObjectUpload CreateObject(ContentHash hash) => new Upload(this, hash);

    /// <inheritdoc/>
    public IObjectReadSession OpenReadSession() => new Session(this);

    /// <inheritdoc/>
    public IEnumerable<ListedObject> ListObjects() =>
        _objects.Select(pair => new ListedObject(pair.Key, new ObjectStat(pair.Value.Bytes.Length, pair.Value.WrittenAt))).ToList();

    /// <inheritdoc/>
    public void DeleteObject(ContentHash hash) => _objects.TryRemove(hash, out _);

    /// <inheritdoc/>
    public void RefreshObject(ContentHash hash)
    {
        if (_objects.TryGetValue(hash, out var entry))
        {
            _objects.TryUpdate(hash, (entry.Bytes, Clock()), entry);
        }
    }

    /// <inheritdoc/>
    public void FlushObjects()
    {
    }

    /// <inheritdoc/>
    public string? ManifestVersion(string key) =>
        _manifests.TryGetValue(key, out var entry) ? entry.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;

    /// <inheritdoc/>
    public byte[]? ReadManifest(string key) => _manifests.TryGetValue(key, out var entry) ? entry.Bytes.ToArray() : null;

    /// <inheritdoc/>
    public IEnumerable<string> ListManifests() => _manifests.Keys.ToList();

    /// <inheritdoc/>
    public bool CreateManifest(string key, ReadOnlySpan<byte> bytes) =>
        _manifests.TryAdd(key, (bytes.ToArray(), Interlocked.Increment(ref _versions)));

    /// <inheritdoc/>
    public void DeleteManifest(string key) => _manifests.TryRemove(key, out _);

    /// <inheritdoc/>
    public string DescribeManifest(string key) => $"memory:manifests/{key}";

    /// <inheritdoc/>
    public IDisposable Lock(string name, bool exclusive, TimeSpan timeout, CancellationToken cancellationToken)
    {
        LockState state = _locks.GetOrAdd(name, _ => new LockState());
        if (!state.TryEnter(exclusive, timeout, cancellationToken))
        {
            throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0} s waiting for the {name} lock of the memory store.");
        }
        return new Releaser(() => state.Exit(exclusive));
    }

    /// <inheritdoc/>
    public void SweepTemporary()
    {
    }

    /// <inheritdoc/>
    public IEnumerable<(string Key, string Version)> ListManifestVersions() =>
        _manifests.Select(m => (m.Key, m.Value.Version.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToList();

    /// <inheritdoc/>
    public IEnumerable<string> ListCatalog() => _catalog.Keys.ToList();

    /// <inheritdoc/>
    public byte[]? ReadCatalog(string name) => _catalog.TryGetValue(name, out byte[]? bytes) ? bytes.ToArray() : null;

    /// <inheritdoc/>
    public bool CreateCatalog(string name, ReadOnlySpan<byte> bytes) => _catalog.TryAdd(name, bytes.ToArray());

    /// <inheritdoc/>
    public void DeleteCatalog(string name) => _catalog.TryRemove(name, out _);

    /// <inheritdoc/>
    public void ForgetLock(string name)
    {
    }

    /// <summary>Replaces a catalog file's bytes as they are: how tests damage a memory store's catalog.</summary>
    public void OverwriteCatalog(string name, byte[] bytes) => _catalog[name] = bytes;

    /// <summary>Replaces an object's bytes as they are: how tests damage a memory store.</summary>
    public void Overwrite(ContentHash hash, byte[] bytes) => _objects[hash] = (bytes, Clock());

    /// <summary>Replaces a manifest's bytes as they are: how tests damage a memory store.</summary>
    public void OverwriteManifest(string key, byte[] bytes) => _manifests[key] = (bytes, Interlocked.Increment(ref _versions));

    private sealed class Upload(MemoryBackend backend, ContentHash hash) : IObjectUpload
    {
        private readonly MemoryStream _stream = new();
        private bool _committed;

        public Stream Stream => _stream;

        public long Commit()
        {
            _committed = true;
            byte[] bytes = _stream.ToArray();
            backend._objects[hash] = (bytes, backend.Clock());
            return bytes.Length;
        }

        public void Dispose()
        {
            if (!_committed)
            {
                _stream.SetLength(0);
            }
            _stream.Dispose();
        }
    }

    private sealed class Session(MemoryBackend backend) : IObjectReadSession
    {
        public IObjectContent Open(ContentHash hash) =>
            backend._objects.TryGetValue(hash, out var entry)
                ? new Content(hash, entry.Bytes)
                : throw new StoreDamageException(null, null, hash, "the object is missing from the store");

        public void Dispose()
        {
        }
    }

    private sealed class Content(ContentHash hash, byte[] bytes) : IObjectContent
    {
        public long Length => bytes.Length;

        public void Read(long offset, Span<byte> destination)
        {
            if (offset < 0 || offset + destination.Length > bytes.Length)
            {
                throw new EndOfStreamException($"object {hash.Hex}: read of {destination.Length} bytes at {offset} is past its end at {bytes.Length}.");
            }
            bytes.AsSpan((int)offset, destination.Length).CopyTo(destination);
        }
    }

    /// <summary>A readers-writer lock that is not tied to threads (a holder may release it from another one).</summary>
    private sealed class LockState
    {
        private readonly Lock _gate = new();
        private int _readers;
        private bool _writer;

        public bool TryEnter(bool exclusive, TimeSpan timeout, CancellationToken cancellationToken)
        {
            DateTime deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                lock (_gate)
                {
                    if (exclusive ? !_writer && _readers == 0 : !_writer)
                    {
                        if (exclusive)
                        {
                            _writer = true;
                        }
                        else
                        {
                            _readers++;
                        }
                        return true;
                    }
                }
                if (DateTime.UtcNow >= deadline)
                {
                    return false;
                }
                cancellationToken.WaitHandle.WaitOne(5);
                cancellationToken.ThrowIfCancellationRequested();
            }
        }

        public void Exit(bool exclusive)
        {
            lock (_gate)
            {
                if (exclusive)
                {
                    _writer = false;
                }
                else
                {
                    _readers--;
                }
            }
        }
    }

    private sealed class Releaser(Action release) : IDisposable
    {
        private Action? _release = release;

        public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}
