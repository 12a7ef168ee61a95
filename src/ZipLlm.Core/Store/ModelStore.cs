using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.IO;

namespace ZipLlm.Store;

/// <summary>
/// A store of models: objects plus one manifest per model. Opening checks the format version;
/// writers hold the store lock shared, removal holds it exclusive.
/// </summary>
public sealed class ModelStore
{
    // Manifests already parsed, by path, with the file's identity when it was read. Compress asks for every
    // manifest (and its base's) once per model it stores; without this a store of n models parsed n * n manifests.
    private readonly Dictionary<string, (DateTime WriteTime, long Length, Manifest Manifest)> _parsed = new(StringComparer.Ordinal);

    private ModelStore(StoreLayout layout)
    {
        Layout = layout;
        Objects = new ObjectStore(layout);
    }

    /// <summary>Where things live.</summary>
    public StoreLayout Layout { get; }

    /// <summary>The objects.</summary>
    public ObjectStore Objects { get; }

    /// <summary>How long to wait for another process's lock before giving up.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Opens the store at <paramref name="root"/>, creating it when <paramref name="create"/> is set.</summary>
    /// <exception cref="NotSupportedException">The store is of a newer or unknown format.</exception>
    /// <exception cref="DirectoryNotFoundException">The store does not exist and <paramref name="create"/> is not set.</exception>
    public static ModelStore Open(string root, bool create)
    {
        var layout = new StoreLayout(root);
        if (!File.Exists(layout.FormatFile))
        {
            if (!create)
            {
                throw new DirectoryNotFoundException($"No store at {layout.Root} (no FORMAT file); run compress first.");
            }
            Directory.CreateDirectory(layout.Root);
            // Another process may be creating the store at this very moment: its folders and FORMAT are expected here.
            if (Directory.EnumerateFileSystemEntries(layout.Root).Any(e => Path.GetFileName(e) is not ("tmp" or "locks" or "objects" or "manifests" or "FORMAT")))
            {
                throw new IOException($"{layout.Root} is not empty and is not a zipllm store; refusing to write into it.");
            }
            // Written through the store's tmp folder, so a half-written FORMAT is never seen; two creators write the same bytes.
            AtomicFile.WriteAllBytes(layout.FormatFile, System.Text.Encoding.ASCII.GetBytes(StoreLayout.FormatLine + "\n"), layout.TempDir);
        }
        string line = File.ReadLines(layout.FormatFile).FirstOrDefault() ?? "";
        if (line.Trim() != StoreLayout.FormatLine)
        {
            throw new NotSupportedException($"{layout.FormatFile}: store format \"{line.Trim()}\" is not supported by this build (it reads \"{StoreLayout.FormatLine}\").");
        }
        Directory.CreateDirectory(layout.ObjectsDir);
        Directory.CreateDirectory(layout.ManifestsDir);
        Directory.CreateDirectory(layout.TempDir);
        Directory.CreateDirectory(layout.LocksDir);
        return new ModelStore(layout);
    }

    /// <summary>Whether <paramref name="modelId"/> is stored (its manifest exists).</summary>
    public bool Contains(string modelId) => File.Exists(Layout.ManifestPath(modelId));

    /// <summary>Reads the manifest of <paramref name="modelId"/>.</summary>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="InvalidDataException">The manifest is corrupt.</exception>
    public Manifest ReadManifest(string modelId)
    {
        string path = Layout.ManifestPath(modelId);
        Manifest manifest;
        lock (_parsed)
        {
            manifest = ParseCached(path) ?? throw new KeyNotFoundException($"Model {modelId} is not in the store at {Layout.Root}.");
        }
        if (manifest.Id != modelId)
        {
            throw new InvalidDataException($"{path}: manifest is for {manifest.Id}, not {modelId}.");
        }
        return manifest;
    }

    /// <summary>Every stored model's manifest, ordered by id.</summary>
    /// <exception cref="InvalidDataException">A manifest is corrupt.</exception>
    public IReadOnlyList<Manifest> ReadAllManifests()
    {
        var manifests = new List<Manifest>();
        lock (_parsed)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (string path in Directory.EnumerateFiles(Layout.ManifestsDir, "*.json", SearchOption.AllDirectories))
            {
                if (ParseCached(path) is { } manifest) // null: removed since it was listed
                {
                    seen.Add(path);
                    manifests.Add(manifest);
                }
            }
            foreach (string gone in _parsed.Keys.Where(p => !seen.Contains(p)).ToList())
            {
                _parsed.Remove(gone);
            }
        }
        manifests.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return manifests;
    }

    /// <summary>
    /// The manifest at <paramref name="path"/>, or null when there is none. One whose file has not changed since it
    /// was last read (same modification time and length) is not parsed again: manifests are only ever replaced by
    /// rename, so a changed one always has a new time. The caller holds the lock on the cache.
    /// </summary>
    private Manifest? ParseCached(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            _parsed.Remove(path);
            return null;
        }
        if (!_parsed.TryGetValue(path, out var cached) || cached.WriteTime != info.LastWriteTimeUtc || cached.Length != info.Length)
        {
            cached = (info.LastWriteTimeUtc, info.Length, Manifest.Parse(File.ReadAllBytes(path), path));
            _parsed[path] = cached;
        }
        return cached.Manifest;
    }

    /// <summary>Writes a manifest last and atomically: from this moment the model is stored.</summary>
    internal void CommitManifest(Manifest manifest)
    {
        // Objects were written without a flush each; one file-system sync makes them all durable before the manifest names them.
        AtomicFile.SyncFileSystem(Layout.ObjectsDir);
        AtomicFile.WriteAllBytes(Layout.ManifestPath(manifest.Id), manifest.ToJson(), Layout.TempDir);
    }

    /// <summary>Takes the store lock: shared for writers and readers, exclusive for removal.</summary>
    public FileLock LockStore(bool exclusive, CancellationToken cancellationToken = default) =>
        FileLock.Acquire(Layout.StoreLockPath, exclusive, LockTimeout, cancellationToken);

    /// <summary>Takes the lock that lets one process at a time ingest <paramref name="modelId"/>.</summary>
    public FileLock LockModel(string modelId, CancellationToken cancellationToken = default) =>
        FileLock.Acquire(Layout.ModelLockPath(modelId), exclusive: true, LockTimeout, cancellationToken);

    /// <summary>Removes temporary files of processes that died mid-write.</summary>
    public void SweepTemporaryFiles() => AtomicFile.SweepStale(Layout.TempDir);

    /// <summary>
    /// Removes <paramref name="modelId"/> and every object no other stored model needs.
    /// Holds the store lock exclusively, so no ingest is under way.
    /// </summary>
    /// <returns>Objects deleted and bytes reclaimed.</returns>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    public (int Objects, long Bytes) Remove(string modelId, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        logger ??= NullLogger.Instance;
        using FileLock storeLock = LockStore(exclusive: true, cancellationToken);
        Manifest manifest = ReadManifest(modelId);
        var others = ReadAllManifests().Where(m => m.Id != modelId).ToList();
        foreach (Manifest other in others.Where(m => m.BaseId == modelId))
        {
            logger.LogInformation("{Finetune} stays restorable: its deltas keep the base tensors of {Model} they need", other.Id, modelId);
        }
        File.Delete(Layout.ManifestPath(modelId));
        AtomicFile.SyncDirectory(Path.GetDirectoryName(Layout.ManifestPath(modelId))!);
        return CollectGarbage(others, logger);
    }

    /// <summary>Deletes objects no manifest needs (left by removed models or by interrupted runs). Takes the store lock exclusively.</summary>
    public (int Objects, long Bytes) CollectGarbage(ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        using FileLock storeLock = LockStore(exclusive: true, cancellationToken);
        return CollectGarbage(ReadAllManifests(), logger ?? NullLogger.Instance);
    }

    private (int Objects, long Bytes) CollectGarbage(IReadOnlyList<Manifest> live, ILogger logger)
    {
        var needed = new HashSet<string>(live.SelectMany(m => m.Objects), StringComparer.Ordinal);
        int count = 0;
        long bytes = 0;
        foreach (ContentHash hash in Objects.Enumerate().ToList())
        {
            if (!needed.Contains(hash.Hex))
            {
                bytes += Objects.SizeOf(hash);
                Objects.Delete(hash);
                count++;
            }
        }
        SweepTemporaryFiles();
        logger.LogDebug("Deleted {Count} unused objects ({Bytes} bytes)", count, bytes);
        return (count, bytes);
    }
}
