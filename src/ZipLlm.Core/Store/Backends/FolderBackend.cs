using ZipLlm.Domain;
using ZipLlm.IO;

namespace ZipLlm.Store.Backends;

/// <summary>
/// A store in a local folder, laid out as <see cref="StoreLayout"/> says: objects written through a temporary file
/// and renamed into place (their writeback started at once, made durable together by one file-system sync before a
/// manifest names them), manifests created exclusively and durably, locks as flock on files that the system
/// releases when a process dies. The only code that touches a folder store's bytes.
/// </summary>
internal sealed class FolderBackend : IStoreBackend
{
    private static readonly string[] s_storeEntries = ["tmp", "locks", "objects", "manifests", "catalog", "FORMAT"];
    private readonly Lock _peakGate = new();

    /// <summary>A backend for the store in the folder <paramref name="root"/> (which need not exist yet).</summary>
    public FolderBackend(string root) => Layout = new StoreLayout(root);

    /// <summary>Where things live in the folder.</summary>
    public StoreLayout Layout { get; }

    /// <summary>Object files a read session keeps open while idle (64; tests lower it to see that the bound holds).</summary>
    public int MaxOpenObjects { get; init; } = ObjectHandleCache.DefaultCapacity;

    /// <summary>Most object files any finished read session had open at once.</summary>
    public int PeakOpenObjects { get; private set; }

    /// <inheritdoc/>
    public string Location => Layout.Root;

    /// <inheritdoc/>
    public string? LocalRoot => Layout.Root;

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">The folder lies inside another store.</exception>
    public byte[]? ReadFormat()
    {
        RefuseInsideAStore();
        return File.Exists(Layout.FormatFile) ? File.ReadAllBytes(Layout.FormatFile) : null;
    }

    /// <summary>Throws when a folder above the store's (through any symlink) holds a store's FORMAT.</summary>
    private void RefuseInsideAStore()
    {
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Layout.Root));
        // The nearest folder that exists, its links resolved: a link into another store must not hide it.
        string existing = root;
        while (!Directory.Exists(existing) && Path.GetDirectoryName(existing) is { } parent)
        {
            existing = parent;
        }
        string resolved = root;
        try
        {
            resolved = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.Join(Posix.RealPath(existing), Path.GetRelativePath(existing, root))));
        }
        catch (IOException)
        {
            // Not resolvable here (permissions): the path as written is looked at.
        }
        foreach (string path in new[] { root, resolved }.Distinct())
        {
            for (string? folder = Path.GetDirectoryName(path); folder is not null; folder = Path.GetDirectoryName(folder))
            {
                if (IsStore(folder))
                {
                    throw StoreLayout.NestedStore(Layout.Root, folder);
                }
            }
        }
    }

    private static bool IsStore(string folder)
    {
        string format = Path.Combine(folder, "FORMAT");
        try
        {
            if (Posix.Stat(format).Kind != EntryKind.File)
            {
                return false;
            }
            using var stream = new FileStream(format, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
            Span<byte> start = stackalloc byte[StoreLayout.FormatMagic.Length];
            return stream.ReadAtLeast(start, start.Length, throwOnEndOfStream: false) == start.Length && start.SequenceEqual(StoreLayout.FormatMagic);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false; // not readable here: not known to be a store
        }
    }

    /// <inheritdoc/>
    public void Create(ReadOnlySpan<byte> format)
    {
        Directory.CreateDirectory(Layout.Root);
        // Another process may be creating the store at this very moment: its folders and FORMAT are expected here.
        if (Directory.EnumerateFileSystemEntries(Layout.Root).Any(e => !s_storeEntries.Contains(Path.GetFileName(e))))
        {
            throw new IOException($"{Layout.Root} is not empty and is not a zipllm store; refusing to write into it.");
        }
        if (!File.Exists(Layout.FormatFile))
        {
            // Written through the store's tmp folder, so a half-written FORMAT is never seen; two creators write the same bytes.
            AtomicFile.WriteAllBytes(Layout.FormatFile, format, Layout.TempDir);
        }
        EnsureFolders();
    }

    /// <summary>Makes the store's folders, which a store written by an older build or by hand may lack.</summary>
    internal void EnsureFolders()
    {
        Directory.CreateDirectory(Layout.ObjectsDir);
        Directory.CreateDirectory(Layout.ManifestsDir);
        Directory.CreateDirectory(Layout.TempDir);
        Directory.CreateDirectory(Layout.LocksDir);
    }

    /// <inheritdoc/>
    public ObjectStat? StatObject(ContentHash hash)
    {
        // One statx: hot, as ingest asks it of every tensor.
        EntryStatus status = Posix.Lstat(Layout.ObjectPath(hash));
        return status.Kind == EntryKind.File ? new ObjectStat(status.Size, status.Modified) : null;
    }

    /// <inheritdoc/>
    public IObjectUpload CreateObject(ContentHash hash) => new Upload(new AtomicFileWriter(Layout.ObjectPath(hash), Layout.TempDir));

    /// <inheritdoc/>
    public IObjectReadSession OpenReadSession() => new ObjectHandleCache(Layout, MaxOpenObjects, peak =>
    {
        lock (_peakGate)
        {
            PeakOpenObjects = Math.Max(PeakOpenObjects, peak);
        }
    });

    /// <inheritdoc/>
    public IEnumerable<ListedObject> ListObjects()
    {
        if (!Directory.Exists(Layout.ObjectsDir))
        {
            yield break;
        }
        foreach (string file in Directory.EnumerateFiles(Layout.ObjectsDir, "*", SearchOption.AllDirectories))
        {
            // A local stat costs microseconds. Something else in an object's place (a link, a FIFO) is listed as empty
            // and old, so that gc deletes it when no model needs it, as it did before there were stats in the listing.
            if (ContentHash.TryParse(Path.GetFileName(file), out ContentHash hash))
            {
                yield return new ListedObject(hash, StatObject(hash) ?? new ObjectStat(0, DateTimeOffset.MinValue));
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>Its modification time is set to now: what gc reads.</remarks>
    public void RefreshObject(ContentHash hash)
    {
        try
        {
            File.SetLastWriteTimeUtc(Layout.ObjectPath(hash), DateTime.UtcNow);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone meanwhile, or not ours to touch: the object is as good as it was.
        }
    }

    /// <inheritdoc/>
    public void DeleteObject(ContentHash hash) => AtomicFile.TryDelete(Layout.ObjectPath(hash));

    /// <inheritdoc/>
    public void FlushObjects() => AtomicFile.SyncFileSystem(Layout.ObjectsDir);

    /// <inheritdoc/>
    public string? ManifestVersion(string key)
    {
        // Manifests are only ever created whole, by rename: a changed one has a new time or length.
        var info = new FileInfo(ManifestPath(key));
        return info.Exists ? FormattableString.Invariant($"{info.LastWriteTimeUtc.Ticks}:{info.Length}") : null;
    }

    /// <inheritdoc/>
    public byte[]? ReadManifest(string key)
    {
        try
        {
            return File.ReadAllBytes(ManifestPath(key));
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public IEnumerable<string> ListManifests()
    {
        if (!Directory.Exists(Layout.ManifestsDir))
        {
            return [];
        }
        return Directory.EnumerateFiles(Layout.ManifestsDir, "*", SearchOption.AllDirectories)
            .Select(path => Path.GetRelativePath(Layout.ManifestsDir, path).Replace(Path.DirectorySeparatorChar, '/'))
            .ToList();
    }

    /// <inheritdoc/>
    public bool CreateManifest(string key, ReadOnlySpan<byte> bytes)
    {
        return AtomicFile.TryCreate(ManifestPath(key), bytes, Layout.TempDir);
    }

    /// <inheritdoc/>
    public void DeleteManifest(string key)
    {
        string path = ManifestPath(key);
        File.Delete(path);
        AtomicFile.SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <inheritdoc/>
    public string DescribeManifest(string key) => ManifestPath(key);

    /// <inheritdoc/>
    public IDisposable Lock(string name, bool exclusive, TimeSpan timeout, CancellationToken cancellationToken) =>
        FileLock.Acquire(Layout.LockPath(name), exclusive, timeout, cancellationToken);

    /// <inheritdoc/>
    public void SweepTemporary() => AtomicFile.SweepStale(Layout.TempDir);

    /// <inheritdoc/>
    public IEnumerable<(string Key, string Version)> ListManifestVersions()
    {
        if (!Directory.Exists(Layout.ManifestsDir))
        {
            return [];
        }
        // The same token as ManifestVersion's, from the enumeration's own stat of each file.
        return new DirectoryInfo(Layout.ManifestsDir).EnumerateFiles("*", SearchOption.AllDirectories)
            .Select(info => (Path.GetRelativePath(Layout.ManifestsDir, info.FullName).Replace(Path.DirectorySeparatorChar, '/'),
                FormattableString.Invariant($"{info.LastWriteTimeUtc.Ticks}:{info.Length}")))
            .ToList();
    }

    /// <inheritdoc/>
    public IEnumerable<string> ListCatalog() =>
        Directory.Exists(Layout.CatalogDir) ? Directory.EnumerateFiles(Layout.CatalogDir).Select(f => Path.GetFileName(f)!).ToList() : [];

    /// <inheritdoc/>
    public byte[]? ReadCatalog(string name)
    {
        try
        {
            return File.ReadAllBytes(Layout.CatalogPath(name));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public bool CreateCatalog(string name, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(Layout.CatalogDir);
        return AtomicFile.TryCreate(Layout.CatalogPath(name), bytes, Layout.TempDir);
    }

    /// <inheritdoc/>
    public void DeleteCatalog(string name) => AtomicFile.TryDelete(Layout.CatalogPath(name));

    /// <inheritdoc/>
    public void ForgetLock(string name) => AtomicFile.TryDelete(Layout.LockPath(name));

    private string ManifestPath(string key) => Layout.ManifestPathOfKey(key);

    private sealed class Upload(AtomicFileWriter writer) : IObjectUpload
    {
        public Stream Stream => writer.Stream;

        // Objects are made durable together, by one file-system sync before a manifest names them.
        public long Commit() => writer.Commit(durable: false);

        public void Dispose() => writer.Dispose();
    }
}
