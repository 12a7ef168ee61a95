using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store.Backends;
using ZipLlm.Store.Catalog;

namespace ZipLlm.Store;

/// <summary>
/// A store of models: objects plus one manifest per model, their bytes at rest in an <see cref="IStoreBackend"/>
/// (a folder, or memory). Opening checks the format version; writers hold the store lock shared, removal holds it
/// exclusive.
/// </summary>
internal sealed class ModelStore
{
    // Manifests already parsed, by key, with the backend's version of it when it was read. Compress asks for every
    // manifest (and its base's) once per model it stores; without this a store of n models parsed n * n manifests.
    private readonly Dictionary<string, (string Version, Manifest Manifest)> _parsed = new(StringComparer.Ordinal);

    private ModelStore(IStoreBackend backend)
    {
        Backend = backend;
        Objects = new ObjectStore(backend);
        Catalog = new StoreCatalog(this);
    }

    /// <summary>What list, lineage, dedup, remove and gc know of every stored model without reading its manifest.</summary>
    public StoreCatalog Catalog { get; }

    /// <summary>Where the store's bytes rest.</summary>
    public IStoreBackend Backend { get; }

    /// <summary>Where things live, for a store in a folder.</summary>
    /// <exception cref="NotSupportedException">The store is not in a folder.</exception>
    public StoreLayout Layout => Backend is FolderBackend folder ? folder.Layout : throw new NotSupportedException($"The store at {Backend.Location} is not a folder.");

    /// <summary>The objects.</summary>
    public ObjectStore Objects { get; }

    /// <summary>How long to wait for another process's lock before giving up.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Opens the store in the folder <paramref name="root"/>, creating it when <paramref name="create"/> is set.</summary>
    /// <exception cref="NotSupportedException">The store is of a newer or unknown format.</exception>
    /// <exception cref="DirectoryNotFoundException">The store does not exist and <paramref name="create"/> is not set.</exception>
    /// <exception cref="IOException">The folder holds something that is not a store.</exception>
    public static ModelStore Open(string root, bool create) => Open(new FolderBackend(root), create);

    /// <summary>Opens the store in <paramref name="backend"/>, creating it when <paramref name="create"/> is set.</summary>
    /// <exception cref="NotSupportedException">The store is of a newer or unknown format.</exception>
    /// <exception cref="DirectoryNotFoundException">The store does not exist and <paramref name="create"/> is not set.</exception>
    /// <exception cref="IOException">The location holds something that is not a store.</exception>
    public static ModelStore Open(IStoreBackend backend, bool create)
    {
        ArgumentNullException.ThrowIfNull(backend);
        byte[]? format = backend.ReadFormat();
        if (format is null)
        {
            if (!create)
            {
                throw new DirectoryNotFoundException($"No store at {backend.Location} (no FORMAT file); run compress first.");
            }
            backend.Create(System.Text.Encoding.ASCII.GetBytes(StoreLayout.FormatLine + "\n"));
            format = backend.ReadFormat() ?? [];
        }
        string line = System.Text.Encoding.ASCII.GetString(format).Split('\n')[0].Trim();
        if (line != StoreLayout.FormatLine)
        {
            throw new NotSupportedException($"{backend.Location}: store format \"{line}\" is not supported by this build (it reads \"{StoreLayout.FormatLine}\").");
        }
        (backend as FolderBackend)?.EnsureFolders();
        return new ModelStore(backend);
    }

    /// <summary>Whether <paramref name="modelId"/> is stored (its manifest exists).</summary>
    public bool Contains(ModelId modelId) => Backend.ManifestVersion(ManifestKey.Of(modelId)) is not null;

    /// <summary>Reads the manifest of <paramref name="modelId"/>.</summary>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="InvalidDataException">The manifest is corrupt.</exception>
    public Manifest ReadManifest(ModelId modelId)
    {
        string key = ManifestKey.Of(modelId);
        Manifest manifest;
        lock (_parsed)
        {
            manifest = ParseCached(key) ?? throw new ModelNotFoundException(modelId, $"Model {modelId} is not in the store at {Backend.Location}.");
        }
        if (manifest.Id != modelId)
        {
            throw new InvalidDataException($"{Backend.DescribeManifest(key)}: manifest is for {manifest.Id}, not {modelId}.");
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
            // One listing gives every key with its version: a manifest parsed before at that version costs nothing more
            // (a long-lived reader's listing, the mount's and the hub's, is then one LIST on a bucket).
            foreach ((string key, string version) in Backend.ListManifestVersions())
            {
                string path = Backend.DescribeManifest(key);
                if (!key.EndsWith(".json", StringComparison.Ordinal))
                {
                    damaged.Add((path, $"{path}: not a manifest (manifests are named org/name.json); remove it or move it out of the store."));
                    continue;
                }
                try
                {
                    if (ParseCached(key, version) is not { } manifest) // null: removed since it was listed
                    {
                        continue;
                    }
                    seen.Add(key);
                    // A manifest is found by its id's key: one that names another model would be read for the wrong one.
                    if (ManifestKey.Of(manifest.Id) != key)
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
        manifests.Sort((a, b) => a.Id.CompareTo(b.Id));
        return new ManifestScan(manifests, damaged);
    }

    /// <summary>
    /// The manifest at <paramref name="key"/>, or null when there is none; one that names another model than its key
    /// is damage. Without <paramref name="cache"/> it is parsed without being kept (the catalog reads every manifest
    /// once, and keeps what it needs of each).
    /// </summary>
    /// <exception cref="InvalidDataException">The manifest is corrupt, or is not the key's model's.</exception>
    /// <exception cref="NotSupportedException">The manifest is of a newer format.</exception>
    internal Manifest? ParseManifestAt(string key, bool cache = true)
    {
        Manifest? manifest;
        if (cache)
        {
            lock (_parsed)
            {
                manifest = ParseCached(key);
            }
        }
        else
        {
            manifest = Backend.ReadManifest(key) is { } bytes ? Manifest.Parse(bytes, Backend.DescribeManifest(key)) : null;
        }
        if (manifest is not null && ManifestKey.Of(manifest.Id) != key)
        {
            throw new InvalidDataException($"{Backend.DescribeManifest(key)}: manifest is for {manifest.Id}, which is not the model its path names.");
        }
        return manifest;
    }

    /// <summary>
    /// The manifest at <paramref name="key"/>, or null when there is none. One the backend says has not changed
    /// since it was last read is not parsed again: manifests are only ever created whole, so a changed one always
    /// has a new version. The caller holds the lock on the cache.
    /// </summary>
    private Manifest? ParseCached(string key, string? listedVersion = null)
    {
        string? version = listedVersion ?? Backend.ManifestVersion(key);
        if (version is null)
        {
            _parsed.Remove(key);
            return null;
        }
        if (!_parsed.TryGetValue(key, out var cached) || cached.Version != version)
        {
            byte[]? bytes = Backend.ReadManifest(key);
            if (bytes is null)
            {
                _parsed.Remove(key);
                return null;
            }
            cached = (version, Manifest.Parse(bytes, Backend.DescribeManifest(key)));
            _parsed[key] = cached;
        }
        return cached.Manifest;
    }

    /// <summary>
    /// Writes a manifest last, exclusively and atomically: from this moment the model is stored. False, and nothing
    /// written, when the model was stored meanwhile (by a writer the locks did not keep out).
    /// </summary>
    internal bool CommitManifest(Manifest manifest)
    {
        string key = ManifestKey.Of(manifest.Id);
        byte[] json = manifest.ToCheckedJson(Backend.DescribeManifest(key));
        // Objects were written without a flush each; one flush makes them all durable before the manifest names them.
        Backend.FlushObjects();
        if (!Backend.CreateManifest(key, json))
        {
            return false;
        }
        Catalog.Record(manifest);
        return true;
    }

    /// <summary>Takes the store lock: shared for writers and readers, exclusive for removal.</summary>
    public IDisposable LockStore(bool exclusive, CancellationToken cancellationToken = default) =>
        Backend.Lock("store", exclusive, LockTimeout, cancellationToken);

    /// <summary>Takes the lock that lets one process at a time ingest <paramref name="modelId"/>.</summary>
    public IDisposable LockModel(ModelId modelId, CancellationToken cancellationToken = default) =>
        Backend.Lock(ModelLockName(modelId), exclusive: true, LockTimeout, cancellationToken);

    /// <summary>Forgets the model lock of <paramref name="modelId"/>, just stored under it (see <see cref="IStoreBackend.ForgetLock"/>).</summary>
    public void ForgetModelLock(ModelId modelId) => Backend.ForgetLock(ModelLockName(modelId));

    private static string ModelLockName(ModelId modelId) => $"model.{modelId.Org}@{modelId.Name}";

    /// <summary>Removes temporary files of processes that died mid-write.</summary>
    public void SweepTemporaryFiles() => Backend.SweepTemporary();

    /// <summary>
    /// Removes <paramref name="modelId"/> and every object no other stored model needs: the objects it needs that no
    /// other model's catalog entry names (the catalog checked against the manifests' listing first, under the lock), so
    /// no object is listed and no other manifest read. Holds the store lock exclusively, so no ingest is under way, and
    /// deletes as gc does with no grace (on S3 under the lease's deadline). Every other manifest must read and check: a
    /// damaged one could need any object, so nothing is removed while one is.
    /// </summary>
    /// <returns>Objects deleted and bytes reclaimed.</returns>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="StoreDamageException">A manifest is damaged; nothing was removed.</exception>
    public GarbageReport Remove(ModelId modelId, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        logger ??= NullLogger.Instance;
        using IDisposable storeLock = LockStore(exclusive: true, cancellationToken);
        Manifest manifest = ReadManifest(modelId);
        string key = ManifestKey.Of(modelId);
        IReadOnlyList<CatalogEntry> entries = CheckedEntries();
        var only = new HashSet<HashKey>(manifest.NeededObjects().Select(HashKey.Of));
        int needed = only.Count;
        foreach (CatalogEntry other in entries)
        {
            if (other.Key == key)
            {
                continue;
            }
            if (other.BaseId == modelId)
            {
                logger.LogInformation("{Finetune} stays restorable: its deltas keep the base tensors of {Model} they need", other.Id, modelId);
            }
            foreach (HashKey hash in other.Objects!)
            {
                only.Remove(hash);
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        Backend.DeleteManifest(key);
        // From here the model is gone: its objects go next, and what a kill leaves of them is gc's.
        Catalog.Forget(key);
        long bytes = 0;
        foreach (HashKey hash in only)
        {
            ContentHash objectHash = hash.ToContentHash();
            bytes += Backend.StatObject(objectHash)?.Length ?? 0;
            Objects.Delete(objectHash);
        }
        Backend.ForgetLock(ModelLockName(modelId));
        SweepTemporaryFiles();
        logger.LogDebug("Deleted the {Count} objects only {Model} needed ({Bytes} bytes)", only.Count, modelId, bytes);
        return new GarbageReport(only.Count, bytes, needed - only.Count);
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
        using IDisposable storeLock = LockStore(exclusive: true, cancellationToken);
        GarbageReport report = CollectGarbage(CheckedEntries(), dryRun, grace, logger ?? NullLogger.Instance, cancellationToken);
        if (!dryRun)
        {
            Catalog.SweepUnreferenced();
        }
        return report;
    }

    /// <summary>
    /// Every model's catalog entry with its objects, the catalog first checked against the manifests; throws when a
    /// manifest is damaged, since then nothing may be deleted.
    /// </summary>
    private IReadOnlyList<CatalogEntry> CheckedEntries()
    {
        CatalogSnapshot snapshot = Catalog.Sync(withObjects: true);
        if (snapshot.DamagedManifests.Count > 0)
        {
            throw new StoreDamageException(null, null, null,
                $"{string.Join("; ", snapshot.DamagedManifests.Select(d => d.Problem.TrimEnd('.')))}. Nothing was deleted, as a damaged manifest could need any object " +
                "(restore the manifest from a backup, or delete it, losing that model, and run gc)");
        }
        return snapshot.Entries;
    }

    private GarbageReport CollectGarbage(IReadOnlyList<CatalogEntry> live, bool dryRun, TimeSpan grace, ILogger logger, CancellationToken cancellationToken)
    {
        var needed = new HashSet<HashKey>(live.SelectMany(m => m.Objects!));
        DateTimeOffset keepAfter = DateTimeOffset.UtcNow - grace;
        int count = 0, recent = 0;
        long bytes = 0;
        foreach ((ContentHash hash, ObjectStat stat) in Objects.List().ToList())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (needed.Contains(HashKey.Of(hash)))
            {
                continue;
            }
            if (grace > TimeSpan.Zero && stat.WrittenAt > keepAfter)
            {
                recent++;
                continue;
            }
            bytes += stat.Length;
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
internal sealed record ManifestScan(IReadOnlyList<Manifest> Manifests, IReadOnlyList<(string Path, string Problem)> Damaged);

/// <summary>What a garbage collection deleted (or would delete, in a dry run).</summary>
/// <param name="Objects">Objects deleted.</param>
/// <param name="Bytes">Bytes they took.</param>
/// <param name="Kept">Objects the stored models need, which were kept.</param>
/// <param name="Recent">Objects no model needs that were kept as younger than the grace period.</param>
internal sealed record GarbageReport(int Objects, long Bytes, int Kept, int Recent = 0);
