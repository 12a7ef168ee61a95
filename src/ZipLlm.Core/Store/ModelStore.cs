using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
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
    /// <exception cref="InvalidDataException">A manifest is corrupt, fails its checksum, or lies about its id.</exception>
    /// <exception cref="NotSupportedException">A manifest is of a newer format.</exception>
    public IReadOnlyList<Manifest> ReadAllManifests()
    {
        ManifestScan scan = ScanManifests();
        if (scan.Damaged.Count > 0)
        {
            throw new InvalidDataException(scan.Damaged[0].Problem);
        }
        return scan.Manifests;
    }

    /// <summary>
    /// Every manifest that reads and checks, ordered by id, and a line for each that does not: callers that only
    /// read (list, compress) go on without the damaged ones; callers that delete (remove, gc) must not.
    /// </summary>
    public ManifestScan ScanManifests()
    {
        var manifests = new List<Manifest>();
        var damaged = new List<(string Path, string Problem)>();
        lock (_parsed)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (string path in Directory.EnumerateFiles(Layout.ManifestsDir, "*", SearchOption.AllDirectories))
            {
                if (!path.EndsWith(".json", StringComparison.Ordinal))
                {
                    damaged.Add((path, $"{path}: not a manifest (manifests are named org/name.json); remove it or move it out of the store."));
                    continue;
                }
                try
                {
                    if (ParseCached(path) is not { } manifest) // null: removed since it was listed
                    {
                        continue;
                    }
                    seen.Add(path);
                    // A manifest is found by its id's path: one that names another model would be read for the wrong one.
                    if (!ModelId.IsValid(manifest.Id) || Layout.ManifestPath(manifest.Id) != Path.GetFullPath(path))
                    {
                        throw new InvalidDataException($"{path}: manifest is for {manifest.Id}, which is not the model its path names.");
                    }
                    manifests.Add(manifest);
                }
                catch (Exception ex) when (ex is InvalidDataException or NotSupportedException or IOException or UnauthorizedAccessException)
                {
                    damaged.Add((path, ex.Message));
                }
            }
            foreach (string gone in _parsed.Keys.Where(p => !seen.Contains(p)).ToList())
            {
                _parsed.Remove(gone);
            }
        }
        manifests.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return new ManifestScan(manifests, damaged);
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
        string path = Layout.ManifestPath(manifest.Id);
        byte[] json = manifest.ToCheckedJson(path);
        AtomicFile.SyncFileSystem(Layout.ObjectsDir);
        AtomicFile.WriteAllBytes(path, json, Layout.TempDir);
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
    /// Holds the store lock exclusively, so no ingest is under way. Every other manifest must read and check:
    /// a damaged one could need any object, so nothing is removed while one is.
    /// </summary>
    /// <returns>Objects deleted and bytes reclaimed.</returns>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="StoreDamageException">A manifest is damaged; nothing was removed.</exception>
    public GarbageReport Remove(string modelId, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        logger ??= NullLogger.Instance;
        using FileLock storeLock = LockStore(exclusive: true, cancellationToken);
        Manifest manifest = ReadManifest(modelId);
        IReadOnlyList<Manifest> others = CheckedManifests().Where(m => m.Id != modelId).ToList();
        foreach (Manifest other in others.Where(m => m.BaseId == modelId))
        {
            logger.LogInformation("{Finetune} stays restorable: its deltas keep the base tensors of {Model} they need", other.Id, modelId);
        }
        File.Delete(Layout.ManifestPath(manifest.Id));
        AtomicFile.SyncDirectory(Path.GetDirectoryName(Layout.ManifestPath(manifest.Id))!);
        // The removed model's objects are reclaimed at once: no compress runs beside this exclusive lock.
        return CollectGarbage(others, dryRun: false, TimeSpan.Zero, logger, cancellationToken);
    }

    /// <summary>
    /// Deletes every object no stored model needs: left by removed models, by a <c>remove</c> that was killed, or by
    /// a compress that failed or was killed. Takes the store lock exclusively, so it waits for running compress runs;
    /// and, as git's gc does, it keeps unneeded objects younger than <paramref name="grace"/>, so a compress that the
    /// lock cannot see (another machine on a file system without working locks) keeps what it has just written.
    /// </summary>
    /// <param name="dryRun">Only count what would be deleted.</param>
    /// <param name="grace">Unneeded objects written more recently than this are kept.</param>
    /// <param name="logger">Logs what is deleted.</param>
    /// <param name="cancellationToken">Stops the work; what was deleted stays deleted, and nothing needed is touched.</param>
    /// <exception cref="StoreDamageException">A manifest is damaged; nothing was deleted.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="grace"/> is negative.</exception>
    public GarbageReport CollectGarbage(bool dryRun = false, TimeSpan grace = default, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(grace, TimeSpan.Zero);
        using FileLock storeLock = LockStore(exclusive: true, cancellationToken);
        return CollectGarbage(CheckedManifests(), dryRun, grace, logger ?? NullLogger.Instance, cancellationToken);
    }

    /// <summary>Every manifest, each read and checked; throws when one is damaged, since then nothing may be deleted.</summary>
    private IReadOnlyList<Manifest> CheckedManifests()
    {
        ManifestScan scan = ScanManifests();
        if (scan.Damaged.Count > 0)
        {
            throw new StoreDamageException(null, null, null,
                $"{string.Join("; ", scan.Damaged.Select(d => d.Problem.TrimEnd('.')))}. Nothing was deleted, as a damaged manifest could need any object " +
                "(restore the manifest from a backup, or delete it, losing that model, and run gc)");
        }
        return scan.Manifests;
    }

    private GarbageReport CollectGarbage(IReadOnlyList<Manifest> live, bool dryRun, TimeSpan grace, ILogger logger, CancellationToken cancellationToken)
    {
        var needed = new HashSet<ContentHash>(live.SelectMany(m => m.NeededObjects()));
        DateTime keepAfter = DateTime.UtcNow - grace;
        int count = 0, recent = 0;
        long bytes = 0;
        foreach (ContentHash hash in Objects.Enumerate().ToList())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (needed.Contains(hash))
            {
                continue;
            }
            if (grace > TimeSpan.Zero && File.GetLastWriteTimeUtc(Layout.ObjectPath(hash)) > keepAfter)
            {
                recent++;
                continue;
            }
            bytes += Objects.SizeOf(hash);
            if (!dryRun)
            {
                Objects.Delete(hash);
            }
            count++;
        }
        if (!dryRun)
        {
            SweepTemporaryFiles();
        }
        logger.LogDebug("{Verb} {Count} unused objects ({Bytes} bytes); kept {Recent} younger than {Grace}", dryRun ? "Would delete" : "Deleted", count, bytes, recent, grace);
        return new GarbageReport(count, bytes, needed.Count, recent);
    }
}

/// <summary>The manifests of a store that read and check, and the problems of those that do not.</summary>
/// <param name="Manifests">Intact manifests, ordered by model id.</param>
/// <param name="Damaged">Path and one-line problem of each manifest that does not read or check.</param>
public sealed record ManifestScan(IReadOnlyList<Manifest> Manifests, IReadOnlyList<(string Path, string Problem)> Damaged);

/// <summary>What a garbage collection deleted (or would delete, in a dry run).</summary>
/// <param name="Objects">Objects deleted.</param>
/// <param name="Bytes">Bytes they took.</param>
/// <param name="Kept">Objects the stored models need, which were kept.</param>
/// <param name="Recent">Objects no model needs that were kept as younger than the grace period.</param>
public sealed record GarbageReport(int Objects, long Bytes, int Kept, int Recent = 0);
