using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Domain;
using ZipLlm.Store.Backends;

namespace ZipLlm.Store.Catalog;

/// <summary>
/// What list, lineage, dedup by file hash, remove and gc need to know of every stored model, kept in the store so
/// that none of them reads every manifest: immutable segments of records (<see cref="CatalogSegment"/>, named by
/// their bytes) and a small root naming them, <c>root-GENERATION</c>, each generation created exclusively (an atomic
/// exclusive create in a folder, a conditional PUT in a bucket), so of two writers of one generation one wins and the
/// other reads the new root and tries again: no update is lost, and a reader sees the snapshot one root names.
/// Manifests stay the truth: <see cref="Sync"/> checks the catalog against one listing of the manifests with their
/// versions (no manifest read) and reads only those it does not know, so a writer killed between its manifest and its
/// catalog record, a lost or damaged catalog (rebuilt from every manifest), or a store written before catalogs all
/// end up right. Segments are merged as they accumulate, newest first, each merge into one at least twice as large as
/// those it takes (as a log-structured merge does), so a root names about log2(models) segments.
/// </summary>
/// <remarks>
/// Modelled on restic's index files (immutable, content-addressed, rebuilt by <c>repair index</c>) and git's
/// multi-pack-index (one small file naming what to read). Thread-safe.
/// </remarks>
internal sealed class StoreCatalog
{
    /// <summary>How a root's file name begins; the generation follows, 12 digits.</summary>
    public const string RootPrefix = "root-";

    /// <summary>First line of a root.</summary>
    public const string RootFormatLine = "zipllm-catalog 1";

    // Tries of a root's generation lost to other writers before the record is left to the next Sync.
    private const int CommitTries = 64;

    private readonly ModelStore _store;
    private readonly Lock _gate = new();
    private Dictionary<string, CatalogEntry> _entries = new(StringComparer.Ordinal);
    private Dictionary<HashKey, string> _files = [];
    private List<(string Name, int Records)> _segments = [];
    private long _generation;
    private bool _withObjects;
    private bool _damaged;
    private bool _synced;
    private IReadOnlyList<(string Path, string Problem)> _damagedManifests = [];

    /// <summary>The catalog of <paramref name="store"/>; nothing is read until it is asked.</summary>
    public StoreCatalog(ModelStore store) => _store = store;

    /// <summary>Makes a model's lineage summary from its manifest (reading its sketch), or null; none: entries have empty summaries.</summary>
    public Func<Manifest, byte[]?>? Summarizer { get; set; }

    /// <summary>Where the catalog logs a rebuild.</summary>
    public ILogger Logger { get; set; } = NullLogger.Instance;

    private IStoreBackend Backend => _store.Backend;

    /// <summary>The generation of the root last read or written (0: none yet), a cheap token of the catalog's state.</summary>
    public long Generation
    {
        get
        {
            lock (_gate)
            {
                return _generation;
            }
        }
    }

    /// <summary>Whether the catalog, as last read, was found damaged (it is rebuilt from the manifests by the next <see cref="Sync"/>).</summary>
    public bool IsDamaged
    {
        get
        {
            lock (_gate)
            {
                return _damaged;
            }
        }
    }

    /// <summary>The newest root's generation as the catalog's listing shows it now, without reading anything else: the store's change token.</summary>
    public long LatestGeneration() => Roots(Backend.ListCatalog()).DefaultIfEmpty(0).Max();

    /// <summary>
    /// Checks the catalog against the manifests (one listing of their keys and versions) and records what it lacks:
    /// manifests it does not know or knows in another version are read, and keys gone are dropped. Returns the
    /// entries, ordered by model id, and each manifest that does not read. With <paramref name="withObjects"/> the
    /// entries carry their objects (remove and gc need them; the rest do not).
    /// </summary>
    /// <exception cref="IOException">The store cannot be read.</exception>
    public CatalogSnapshot Sync(bool withObjects = false)
    {
        lock (_gate)
        {
            if (withObjects && !_withObjects)
            {
                _withObjects = true;
                ResetView();
            }
            LoadLatest();
            SyncLoaded();
            return Snapshot();
        }
    }

    /// <summary>The work of <see cref="Sync"/> on the view as loaded; the caller holds the gate.</summary>
    private void SyncLoaded()
    {
        var listed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach ((string key, string version) in Backend.ListManifestVersions())
        {
            listed[key] = version;
        }
        var records = new List<CatalogRecord>();
        var damaged = new List<(string Path, string Problem)>();
        foreach ((string key, string version) in listed.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (_entries.TryGetValue(key, out CatalogEntry? known) && known.Version == version)
            {
                continue;
            }
            string path = Backend.DescribeManifest(key);
            if (!key.EndsWith(".json", StringComparison.Ordinal))
            {
                damaged.Add((path, $"{path}: not a manifest (manifests are named org/name.json); remove it or move it out of the store."));
                continue;
            }
            try
            {
                if (_store.ParseManifestAt(key, cache: false) is { } manifest)
                {
                    records.Add(new CatalogRecord(key, CatalogEntry.Of(key, version, manifest, Summarize(manifest))));
                }
            }
            catch (Exception ex) when (ex is InvalidDataException or NotSupportedException or IOException or UnauthorizedAccessException)
            {
                damaged.Add((path, ex.Message));
                if (known is not null)
                {
                    records.Add(new CatalogRecord(key, null)); // what it knew of that key no longer holds
                }
            }
        }
        foreach (string gone in _entries.Keys.Where(k => !listed.ContainsKey(k)).ToList())
        {
            records.Add(new CatalogRecord(gone, null));
        }
        if (records.Count > 0 || _damaged)
        {
            if (_damaged || (_generation == 0 && records.Count > 1))
            {
                Logger.LogInformation("Catalog of {Store}: recorded {Count} models from their manifests", Backend.Location, records.Count(r => r.Entry is not null));
            }
            Commit(records, complete: true);
        }
        _damagedManifests = damaged;
        _synced = true;
    }

    /// <summary>The entries as last read (after <see cref="Sync"/> or <see cref="Refresh"/>), ordered by model id.</summary>
    public CatalogSnapshot Snapshot()
    {
        lock (_gate)
        {
            var entries = _entries.Values.ToList();
            entries.Sort((a, b) => a.Id.CompareTo(b.Id));
            return new CatalogSnapshot(entries, _damagedManifests, _generation);
        }
    }

    /// <summary>A <see cref="Sync"/> the first time, then a <see cref="Refresh"/>: what a run that finds models again needs.</summary>
    public void SyncOnce()
    {
        lock (_gate)
        {
            LoadLatest();
            if (!_synced)
            {
                SyncLoaded();
            }
        }
    }

    /// <summary>Reads what other writers recorded since the root last read: nothing when the root is the same (one listing of the catalog).</summary>
    public void Refresh()
    {
        lock (_gate)
        {
            LoadLatest();
        }
    }

    /// <summary>The model holding a file of SHA-256 <paramref name="sha256"/>, as last read (it may have been removed since).</summary>
    public ModelId? FindFile(ContentHash sha256)
    {
        lock (_gate)
        {
            return _files.TryGetValue(HashKey.Of(sha256), out string? key) && _entries.TryGetValue(key, out CatalogEntry? entry) ? entry.Id : null;
        }
    }

    /// <summary>
    /// Records a manifest just committed. Best effort: when the catalog cannot be written, the next
    /// <see cref="Sync"/> finds the manifest and records it.
    /// </summary>
    public void Record(Manifest manifest)
    {
        string key = ManifestKey.Of(manifest.Id);
        try
        {
            string? version = Backend.ManifestVersion(key);
            if (version is null)
            {
                return;
            }
            CatalogEntry entry = CatalogEntry.Of(key, version, manifest, Summarize(manifest));
            lock (_gate)
            {
                LoadLatest();
                if (_generation == 0 || _damaged)
                {
                    // No catalog yet, or a lost or damaged one: written whole from the manifests (this one among them),
                    // never as one record that readers would take for the whole store.
                    SyncLoaded();
                    return;
                }
                Commit([new CatalogRecord(key, entry)]);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Logger.LogWarning("{Model} is stored, but the catalog could not record it ({Reason}); the next run records it", manifest.Id, ex.Message);
        }
    }

    /// <summary>Records that the model at <paramref name="key"/> was removed (its manifest deleted).</summary>
    /// <exception cref="IOException">The catalog cannot be written (the next <see cref="Sync"/> drops the model).</exception>
    public void Forget(string key)
    {
        lock (_gate)
        {
            LoadLatest();
            if (_generation == 0 || _damaged)
            {
                SyncLoaded();
                return;
            }
            Commit([new CatalogRecord(key, null)]);
        }
    }

    /// <summary>
    /// Deletes catalog files no root of the last two generations names: segments of writers that lost a race or were
    /// killed, and older roots. Only while no other writer can be at work (the store lock held exclusively).
    /// </summary>
    public int SweepUnreferenced()
    {
        lock (_gate)
        {
            LoadLatest();
            var keep = new HashSet<string>(_segments.Select(s => s.Name), StringComparer.Ordinal);
            int deleted = 0;
            foreach (string name in Backend.ListCatalog())
            {
                bool oldRoot = TryGeneration(name, out long generation) && generation < _generation;
                bool strayFile = !TryGeneration(name, out _) && !keep.Contains(name);
                if (oldRoot || strayFile)
                {
                    Backend.DeleteCatalog(name);
                    deleted++;
                }
            }
            return deleted;
        }
    }

    private byte[]? Summarize(Manifest manifest)
    {
        try
        {
            return Summarizer?.Invoke(manifest);
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or StoreDamageException or IOException)
        {
            Logger.LogDebug("{Model}: no lineage summary ({Reason})", manifest.Id, ex.Message);
            return null;
        }
    }

    private void ResetView()
    {
        _entries = new Dictionary<string, CatalogEntry>(StringComparer.Ordinal);
        _files = [];
        _segments = [];
        _generation = 0;
    }

    private void Apply(IEnumerable<CatalogRecord> records)
    {
        foreach (CatalogRecord record in records)
        {
            if (record.Entry is { } entry)
            {
                _entries[record.Key] = entry;
                foreach (HashKey file in entry.FileHashes)
                {
                    _files[file] = record.Key;
                }
            }
            else
            {
                _entries.Remove(record.Key);
            }
        }
    }

    /// <summary>
    /// Brings the view to the newest root: only the segments added since when the ones read are still named, else all
    /// again. A root or segment that cannot be read (deleted by a merge meanwhile) is looked for again; one that stays
    /// unreadable marks the catalog damaged: the view is emptied, and the next commit writes it whole from the manifests.
    /// </summary>
    private void LoadLatest()
    {
        string? problem = null;
        // A file gone is what a merge by another writer does between our listing and our read: looked for again, many
        // times if writers are busy. Bytes that are not what their name says are damage: looked at twice.
        for (int missing = 0, invalid = 0; missing < 16 && invalid < 2;)
        {
            long latest = Roots(Backend.ListCatalog()).DefaultIfEmpty(0).Max();
            if (latest == 0 || (latest == _generation && !_damaged))
            {
                if (latest == 0 && _generation != 0)
                {
                    ResetView(); // the catalog was deleted: rebuilt by the next Sync
                }
                return;
            }
            try
            {
                List<(string Name, int Records)> segments = ReadRoot(latest);
                bool extends = !_damaged && _segments.Count <= segments.Count && _segments.SequenceEqual(segments.Take(_segments.Count));
                var toRead = extends ? segments.Skip(_segments.Count).ToList() : segments;
                var read = new List<List<CatalogRecord>>();
                foreach ((string name, _) in toRead)
                {
                    byte[] bytes = Backend.ReadCatalog(name) ?? throw new FileNotFoundException($"catalog segment {name} is missing");
                    read.Add(CatalogSegment.Read(name, bytes, _withObjects));
                }
                if (!extends)
                {
                    ResetView();
                }
                foreach (List<CatalogRecord> records in read)
                {
                    Apply(records);
                }
                _segments = segments;
                _generation = latest;
                _damaged = false;
                return;
            }
            catch (FileNotFoundException ex)
            {
                problem = ex.Message;
                missing++;
            }
            catch (InvalidDataException ex)
            {
                problem = ex.Message;
                invalid++;
            }
        }
        Logger.LogWarning("The catalog of {Store} is damaged ({Problem}); rebuilding it from the manifests", Backend.Location, problem);
        long generation = Roots(Backend.ListCatalog()).DefaultIfEmpty(0).Max();
        ResetView();
        _generation = generation;
        _damaged = true;
    }

    private List<(string Name, int Records)> ReadRoot(long generation)
    {
        string name = RootName(generation);
        byte[] bytes = Backend.ReadCatalog(name) ?? throw new FileNotFoundException($"catalog root {name} is missing");
        string[] lines;
        try
        {
            lines = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDataException($"catalog root {name} is not text", ex);
        }
        if (lines.Length == 0 || lines[0] != RootFormatLine)
        {
            throw new InvalidDataException($"catalog root {name} does not begin \"{RootFormatLine}\"");
        }
        var segments = new List<(string, int)>();
        foreach (string line in lines.Skip(1))
        {
            string[] parts = line.Split(' ');
            if (parts.Length != 2 || !parts[0].StartsWith(CatalogSegment.NamePrefix, StringComparison.Ordinal)
                || !ContentHash.TryParse(parts[0][CatalogSegment.NamePrefix.Length..], out _)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int records))
            {
                throw new InvalidDataException($"catalog root {name} has a malformed line \"{line}\"");
            }
            segments.Add((parts[0], records));
        }
        return segments;
    }

    /// <summary>
    /// Writes <paramref name="records"/> as a new segment and the next root naming it, merging segments as
    /// accumulated; after a lost race, reads the winner's root and tries again. The view then holds the records.
    /// </summary>
    private void Commit(List<CatalogRecord> records, bool complete = false)
    {
        for (int attempt = 0; attempt < CommitTries; attempt++)
        {
            if (_damaged && (!complete || attempt > 0))
            {
                // Found damaged meanwhile: written whole from a listing of the manifests taken now, never as these
                // records alone (or as a listing taken before the generation it would replace).
                SyncLoaded();
                return;
            }
            try
            {
                if (TryCommit(records))
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is FileNotFoundException or InvalidDataException)
            {
                // A segment to merge was merged away by another writer meanwhile: its root says where it went.
            }
            // Another writer took that generation: read what it wrote and try again on top of it.
            LoadLatest();
        }
        throw new IOException($"The catalog of {Backend.Location} could not be written: {CommitTries} other writers came first.");
    }

    /// <summary>One try of <see cref="Commit"/>: false when another writer took the generation.</summary>
    private bool TryCommit(List<CatalogRecord> records)
    {
        List<(string Name, int Records)> segments;
        List<CatalogRecord>? rewrite = null;
        if (_damaged)
        {
            // Written whole: every entry the manifests gave, none of the damaged catalog's segments.
            rewrite = [.. _entries.Select(e => new CatalogRecord(e.Key, e.Value)), .. records];
            segments = [];
        }
        else
        {
            segments = [.. _segments];
        }
        (string name, byte[] bytes) = CatalogSegment.Write(Compacted(rewrite ?? records, keepRemovals: rewrite is null && segments.Count > 0));
        WriteSegment(name, bytes);
        segments.Add((name, CountRecords(rewrite ?? records)));
        var superseded = new List<string>();
        segments = Merge(segments, superseded);
        byte[] root = RootBytes(segments);
        if (Backend.CreateCatalog(RootName(_generation + 1), root))
        {
            // Roots older than the one before the newest are deleted, so a writer whose view is that stale can create
            // its generation anew: a newer one listed means ours is not the catalog, and it goes, touching nothing else.
            if (Roots(Backend.ListCatalog()).DefaultIfEmpty(0).Max() > _generation + 1)
            {
                Backend.DeleteCatalog(RootName(_generation + 1));
                return false;
            }
            foreach (string name2 in superseded.Where(s => !segments.Any(k => k.Name == s)))
            {
                Backend.DeleteCatalog(name2);
            }
            if (_generation > 1)
            {
                Backend.DeleteCatalog(RootName(_generation - 1));
            }
            Apply(records);
            _segments = segments;
            _generation++;
            _damaged = false;
            return true;
        }
        return false;
    }

    /// <summary>
    /// Writes a segment. One of its name there already holds the same records, unless it is damaged (named by bytes
    /// it no longer holds): then it is replaced, or a rebuild would name the very file it replaces.
    /// </summary>
    private void WriteSegment(string name, byte[] bytes)
    {
        if (Backend.CreateCatalog(name, bytes))
        {
            return;
        }
        byte[]? existing = Backend.ReadCatalog(name);
        if (existing is null || !existing.AsSpan().SequenceEqual(bytes))
        {
            Backend.DeleteCatalog(name);
            Backend.CreateCatalog(name, bytes);
        }
    }

    private static int CountRecords(List<CatalogRecord> records) => records.Select(r => r.Key).Distinct(StringComparer.Ordinal).Count();

    /// <summary>The last record of each key, in key order; removals dropped unless older segments may hold the key.</summary>
    private static List<CatalogRecord> Compacted(IEnumerable<CatalogRecord> records, bool keepRemovals)
    {
        var last = new Dictionary<string, CatalogRecord>(StringComparer.Ordinal);
        foreach (CatalogRecord record in records)
        {
            last[record.Key] = record;
        }
        return [.. last.Values.Where(r => keepRemovals || r.Entry is not null).OrderBy(r => r.Key, StringComparer.Ordinal)];
    }

    /// <summary>
    /// Merges the newest segments while the one before them is no more than twice their size, as a binary counter
    /// carries: segment sizes grow geometrically from newest to oldest, so there are about log2(records) of them and a
    /// record is rewritten about log2(records) times in all.
    /// </summary>
    private List<(string Name, int Records)> Merge(List<(string Name, int Records)> segments, List<string> superseded)
    {
        while (segments.Count >= 2 && segments[^2].Records <= 2 * segments[^1].Records)
        {
            var older = segments[^2];
            var newer = segments[^1];
            var records = new List<CatalogRecord>();
            foreach ((string name, _) in new[] { older, newer })
            {
                byte[] bytes = Backend.ReadCatalog(name) ?? throw new FileNotFoundException($"catalog segment {name} is missing");
                records.AddRange(CatalogSegment.Read(name, bytes, withObjects: true));
            }
            List<CatalogRecord> merged = Compacted(records, keepRemovals: segments.Count > 2);
            (string mergedName, byte[] mergedBytes) = CatalogSegment.Write(merged);
            WriteSegment(mergedName, mergedBytes);
            superseded.Add(older.Name);
            superseded.Add(newer.Name);
            segments.RemoveRange(segments.Count - 2, 2);
            segments.Add((mergedName, Math.Max(1, merged.Count)));
        }
        return segments;
    }

    private static byte[] RootBytes(List<(string Name, int Records)> segments)
    {
        var text = new StringBuilder(RootFormatLine).Append('\n');
        foreach ((string name, int records) in segments)
        {
            text.Append(name).Append(' ').Append(records.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static string RootName(long generation) => RootPrefix + generation.ToString("D12", CultureInfo.InvariantCulture);

    private static IEnumerable<long> Roots(IEnumerable<string> names)
    {
        foreach (string name in names)
        {
            if (TryGeneration(name, out long generation))
            {
                yield return generation;
            }
        }
    }

    private static bool TryGeneration(string name, out long generation)
    {
        generation = 0;
        return name.StartsWith(RootPrefix, StringComparison.Ordinal) && name.Length == RootPrefix.Length + 12
            && long.TryParse(name.AsSpan(RootPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out generation) && generation > 0;
    }
}

/// <summary>The catalog's entries at one moment, and the manifests that did not read when it was last checked.</summary>
/// <param name="Entries">Every model's entry, ordered by id.</param>
/// <param name="DamagedManifests">Path and one-line problem of each manifest that does not read or check.</param>
/// <param name="Generation">The root they were read from.</param>
internal sealed record CatalogSnapshot(IReadOnlyList<CatalogEntry> Entries, IReadOnlyList<(string Path, string Problem)> DamagedManifests, long Generation);
