using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.IO;
using ZipLlm.Lineage;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Store.Catalog;

namespace ZipLlm.Session;

/// <summary>How a <see cref="StoreSession"/> is opened.</summary>
internal sealed record StoreSessionOptions
{
    /// <summary>Workers (0: one per processor).</summary>
    public int Threads { get; init; }

    /// <summary>Codec settings for the objects the session writes.</summary>
    public CodecOptions Codec { get; init; } = CodecOptions.Default;

    /// <summary>Make the store when there is none.</summary>
    public bool Create { get; init; }

    /// <summary>Where the session logs.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>The clock of leases, lingering locks and caches.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>What a restore is asked to do besides writing the model.</summary>
/// <param name="Force">Replace what is in the folder (see <see cref="ModelRestorer.Restore"/>).</param>
/// <param name="CheckSha256">Check each file's SHA-256 instead of its XXH3-128.</param>
/// <param name="ProtectedFolders">Folders a forced restore must never sweep (the config's model folder).</param>
internal sealed record RestoreRequest(bool Force = false, bool CheckSha256 = false, IReadOnlyList<string>? ProtectedFolders = null);

/// <summary>What verify found: each model checked with its problems (none when intact), and damaged manifests.</summary>
/// <param name="Models">Each model checked, in order, with one line per problem.</param>
/// <param name="DamagedManifests">One line for each manifest that does not read or check.</param>
internal sealed record VerifyReport(IReadOnlyList<(ModelId ModelId, IReadOnlyList<string> Problems)> Models, IReadOnlyList<string> DamagedManifests)
{
    /// <summary>Whether everything checked is intact.</summary>
    public bool Intact => DamagedManifests.Count == 0 && Models.All(m => m.Problems.Count == 0);

    /// <summary>The first problem found, or null when everything checked is intact.</summary>
    public string? FirstProblem => Models.SelectMany(m => m.Problems).Concat(DamagedManifests).FirstOrDefault();
}

/// <summary>What a store holds: its models as the catalog knows them (checked against the manifests), a line for each damaged manifest, and the bytes its objects take.</summary>
internal sealed record StoreListing(IReadOnlyList<CatalogEntry> Manifests, IReadOnlyList<string> DamagedManifests, long StoredBytes)
{
    /// <summary>Bytes the listed models' files take unstored.</summary>
    public long OriginalBytes => Manifests.Sum(m => m.OriginalBytes);

    /// <summary>Each model's role as the store sees it (a model some stored finetune is against is a base).</summary>
    public IReadOnlyDictionary<ModelId, ModelRoleKind> Roles { get; } = CatalogEntry.RolesAmong(Manifests);
}

/// <summary>
/// One open store and everything a run on it owns: the backend, the workers (threads of the session's own, with their
/// codecs) and the clock. Every operation on a store — compress one model, restore, verify, list, remove, gc — is
/// written once here; the CLI's jobs turn a config into calls of it, and the library's <see cref="ZipLlmStore"/> is a
/// facade over it. Nothing here sets process-wide state or waits on a thread-pool thread: the waiting work runs on
/// threads of its own (<see cref="OwnedThreads"/>, <see cref="RunAsync{T}"/>), the chunk work on the workers.
/// </summary>
/// <remarks>
/// Locks are the caller's: an operation documents whether it needs the store lock held shared or takes it itself,
/// since a CLI run holds one lock for all its models and the library shares one among calls (LingeringStoreLock).
/// </remarks>
internal sealed class StoreSession : IDisposable
{
    private int _disposed;

    // The lineage summary of each model being stored, made from the sketch it was sketched with, for its catalog record.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ModelId, byte[]> _summaries = new();

    private StoreSession(ModelStore store, WorkerPool workers, StoreSessionOptions options)
    {
        Store = store;
        Workers = workers;
        Logger = options.Logger;
        Time = options.Time;
        CodecOptions codec = options.Codec;
        store.Catalog.Logger = options.Logger;
        store.Catalog.Summarizer = manifest =>
        {
            // A model this session stores was sketched already; others' sketches are read back from the store.
            if (_summaries.TryGetValue(manifest.Id, out byte[]? summary))
            {
                return summary;
            }
            using var sketches = new ModelSketches.StoredSketchReader(store, codec);
            return LineageIndex.Summarize(sketches.Read(manifest));
        };
    }

    /// <summary>The store.</summary>
    public ModelStore Store { get; }

    /// <summary>The session's workers: its thread budget and codec settings.</summary>
    public WorkerPool Workers { get; }

    /// <summary>Where the session logs.</summary>
    public ILogger Logger { get; }

    /// <summary>The session's clock.</summary>
    public TimeProvider Time { get; }

    /// <summary>Where the store is: its folder, or its <c>s3://BUCKET/PREFIX</c>.</summary>
    public string Location => Store.Backend.Location;

    /// <summary>
    /// Opens the store at <paramref name="location"/>, a folder or <c>s3://BUCKET/PREFIX</c> (as many requests in
    /// flight as workers), and starts the session's workers.
    /// </summary>
    /// <exception cref="ArgumentException">The S3 URL or an AWS variable is malformed, or the options are out of range.</exception>
    /// <exception cref="DirectoryNotFoundException">There is no store there and <see cref="StoreSessionOptions.Create"/> is not set.</exception>
    /// <exception cref="NotSupportedException">The store is of a newer or unknown format.</exception>
    /// <exception cref="IOException">The location holds something that is not a store, or cannot be reached.</exception>
    public static StoreSession Open(string location, StoreSessionOptions options)
    {
        var workers = new WorkerPool(options.Threads, options.Codec);
        IStoreBackend? backend = null;
        try
        {
            backend = StoreAccess.OpenBackend(location, workers.Threads, options.Time);
            return new StoreSession(ModelStore.Open(backend, options.Create), workers, options);
        }
        catch
        {
            (backend as IDisposable)?.Dispose();
            workers.Dispose();
            throw;
        }
    }

    /// <summary>Opens the store <paramref name="config"/> names, with its thread count.</summary>
    /// <inheritdoc cref="Open(string, StoreSessionOptions)"/>
    public static StoreSession Open(ZipLlmConfig config, StoreSessionOptions options) =>
        Open(config.StorageDir, options with { Threads = config.Threads });

    /// <summary>Takes the store's lock, shared (readers, compress) or exclusive (remove, gc).</summary>
    public IDisposable LockStore(bool exclusive, CancellationToken cancellationToken) => Store.LockStore(exclusive, cancellationToken);

    /// <summary>
    /// Whether <paramref name="storeLock"/> (from <see cref="LockStore"/>, still held) was lost: a bucket's lease broken
    /// by another process or not renewed in time, asked of the store when this process cannot tell. What an operation
    /// under it found missing or changed is then no damage.
    /// </summary>
    public static bool LockLost(IDisposable storeLock) => ILosableLock.WasLost(storeLock);

    /// <summary>
    /// Runs <paramref name="operation"/> (<paramref name="what"/> it does) under <paramref name="storeLock"/>: what it finds
    /// missing or changed after that lock was lost is a <see cref="StoreLockLostException"/>, not damage, and so is a
    /// failed check (<paramref name="failed"/>) of its result.
    /// </summary>
    /// <exception cref="StoreLockLostException">The lock was lost, and the operation met damage or its result failed.</exception>
    public T UnderLock<T>(IDisposable storeLock, string what, Func<T> operation, Func<T, string?>? failed = null)
    {
        T result;
        try
        {
            result = operation();
        }
        catch (StoreDamageException ex) when (LockLost(storeLock))
        {
            throw new StoreLockLostException(Location, what, ex);
        }
        if (failed?.Invoke(result) is { } problem && LockLost(storeLock))
        {
            throw new StoreLockLostException(Location, what, new IOException(problem));
        }
        return result;
    }

    /// <summary>Opens a session on <paramref name="backend"/>, which it owns from here on (tests: a bucket with short leases and a clock of theirs).</summary>
    internal static StoreSession Open(IStoreBackend backend, StoreSessionOptions options)
    {
        var workers = new WorkerPool(options.Threads, options.Codec);
        try
        {
            return new StoreSession(ModelStore.Open(backend, options.Create), workers, options);
        }
        catch
        {
            (backend as IDisposable)?.Dispose();
            workers.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="operation"/> (which waits: on I/O, on its chunks in order) on a thread of its own and
    /// completes when it is done, so an async caller's thread-pool thread is never held by it.
    /// </summary>
    public Task<T> RunAsync<T>(string name, Func<T> operation)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return OwnedThreads.Start("zipllm " + name, operation);
    }

    /// <summary>
    /// Checks that <paramref name="baseId"/> can be the base of <paramref name="modelId"/>: stored, and not already at
    /// the end of the longest chain a chain may be (restoring a model decodes every base up its chain).
    /// </summary>
    /// <exception cref="KeyNotFoundException">The base is not stored.</exception>
    /// <exception cref="ArgumentException">The base already ends a chain of <see cref="LineagePlanner.MaxMaxDepth"/> bases.</exception>
    /// <exception cref="StoreDamageException">The base's manifest is damaged.</exception>
    public void CheckBase(ModelId modelId, ModelId baseId)
    {
        Manifest baseManifest;
        try
        {
            baseManifest = ReadManifest(baseId);
        }
        catch (ModelNotFoundException ex)
        {
            throw new ModelNotFoundException(baseId, $"The base model {baseId} of {modelId} is not in the store at {Location}; store it first.", ex);
        }
        int depth = LineagePlanner.DepthOf(baseManifest);
        if (depth >= LineagePlanner.MaxMaxDepth)
        {
            throw new ArgumentException(
                $"The base model {baseId} of {modelId} already ends a chain of {depth} bases, the longest a chain may be "
                + $"({LineagePlanner.MaxMaxDepth}); store {modelId} against one of its ancestors, or alone.", "baseModelId");
        }
    }

    /// <summary>
    /// Stores the model in <paramref name="folder"/> as <paramref name="modelId"/>, under its model lock: skipped (a
    /// result with <see cref="IngestResult.Skipped"/>) when it is stored already; else sketched, given the role
    /// <paramref name="roleFor"/> picks from its sketch, its base checked (<see cref="CheckBase"/>), and ingested.
    /// The caller holds the store lock shared.
    /// </summary>
    /// <exception cref="InvalidDataException">A file is malformed; nothing was stored.</exception>
    /// <exception cref="EndOfStreamException">A safetensors file is truncated; nothing was stored.</exception>
    /// <exception cref="IOException">A file changed while it was read, or the store cannot be written.</exception>
    public IngestResult Compress(ModelId modelId, string folder, Func<ModelSketch, ModelRole> roleFor, string? revision,
        IProgress<ByteProgress>? progress, CancellationToken cancellationToken)
    {
        using IDisposable modelLock = Store.LockModel(modelId, cancellationToken);
        if (Store.Contains(modelId))
        {
            return new IngestResult(modelId, true, 0, 0, TimeSpan.Zero, 0, 0, 0, 0, 0);
        }
        // Sketched as every model is, so that later models can be scored against this one.
        ModelSketch sketch = ModelSketches.FromFolder(modelId, folder, cancellationToken);
        ModelRole role = roleFor(sketch);
        if (role is { Kind: ModelRoleKind.Finetune, BaseId: { } baseId })
        {
            CheckBase(modelId, baseId);
        }
        var ingester = new ModelIngester(Store, Workers, Logger) { Progress = progress };
        _summaries[modelId] = LineageIndex.Summarize(sketch);
        IngestResult result;
        try
        {
            result = ingester.Ingest(modelId, folder, role, cancellationToken, sketch.ToBytes(), revision);
        }
        finally
        {
            _summaries.TryRemove(modelId, out _);
        }
        // Stored: no one needs the model's lock file again (one who waits for it finds the model stored), so a store's
        // lock folder does not grow with every model it ever held.
        Store.ForgetModelLock(modelId);
        return result;
    }

    /// <summary>Rebuilds <paramref name="modelId"/> into <paramref name="outputFolder"/>; the caller holds the store lock shared.</summary>
    /// <inheritdoc cref="ModelRestorer.Restore" path="/exception"/>
    public RestoreResult Restore(ModelId modelId, string outputFolder, RestoreRequest request, IProgress<ByteProgress>? progress,
        CancellationToken cancellationToken)
    {
        var restorer = new ModelRestorer(Store, Workers)
        {
            Progress = progress,
            CheckSha256 = request.CheckSha256,
            ProtectedFolders = request.ProtectedFolders ?? [],
        };
        return restorer.Restore(modelId, outputFolder, request.Force, cancellationToken);
    }

    /// <summary>
    /// Decodes every file of <paramref name="modelId"/>, or of every stored model when null, against the hashes recorded
    /// at ingest; damage is reported and the rest still checked. The caller holds the store lock shared.
    /// </summary>
    /// <param name="modelId">The model to check, or null for all.</param>
    /// <param name="progress">Gets bytes checked.</param>
    /// <param name="modelChecked">Called as each model's check is done, with its problems (none when intact).</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <exception cref="KeyNotFoundException">The model named is not stored.</exception>
    public VerifyReport Verify(ModelId? modelId, IProgress<ByteProgress>? progress, Action<ModelId, IReadOnlyList<string>>? modelChecked,
        CancellationToken cancellationToken)
    {
        List<ModelId> models;
        IReadOnlyList<string> damaged = [];
        if (modelId is { } named)
        {
            if (!Store.Contains(named))
            {
                throw new ModelNotFoundException(named, $"Model {named} is not in the store");
            }
            models = [named];
        }
        else
        {
            ManifestScan scan = Store.ScanManifests();
            models = scan.Manifests.Select(m => m.Id).ToList();
            damaged = scan.Damaged.Select(d => d.Problem).ToList();
        }
        var restorer = new ModelRestorer(Store, Workers);
        var results = new List<(ModelId, IReadOnlyList<string>)>();
        foreach (ModelId model in models)
        {
            IReadOnlyList<string> problems = restorer.Verify(model, progress, cancellationToken);
            modelChecked?.Invoke(model, problems);
            results.Add((model, problems));
        }
        return new VerifyReport(results, damaged);
    }

    /// <summary>Every intact manifest, a line per damaged one, and the bytes the objects take; the caller holds the store lock shared.</summary>
    public StoreListing List()
    {
        // The catalog checked against one listing of the manifests: only those it does not know are read.
        CatalogSnapshot catalog = Store.Catalog.Sync();
        long stored = Store.Objects.List().Sum(o => o.Stat.Length);
        return new StoreListing(catalog.Entries, catalog.DamagedManifests.Select(d => d.Problem).ToList(), stored);
    }

    /// <summary>Removes <paramref name="modelId"/> and what only it needed; takes the store lock exclusively itself.</summary>
    /// <exception cref="KeyNotFoundException">The model is not stored (or was removed by another process meanwhile).</exception>
    public GarbageReport Remove(ModelId modelId, CancellationToken cancellationToken)
    {
        // Checked before waiting for the lock, so a mistyped id fails at once; checked again under it by Remove.
        if (!Store.Contains(modelId))
        {
            throw new ModelNotFoundException(modelId, $"Model {modelId} is not in the store");
        }
        try
        {
            return Store.Remove(modelId, Logger, cancellationToken);
        }
        catch (ModelNotFoundException ex)
        {
            throw new ModelNotFoundException(modelId, $"Model {modelId} is not in the store (removed by another process meanwhile)", ex);
        }
    }

    /// <summary>Deletes what no intact manifest needs and is older than <paramref name="grace"/>; takes the store lock exclusively itself.</summary>
    public GarbageReport CollectGarbage(bool dryRun, TimeSpan grace, CancellationToken cancellationToken) =>
        Store.CollectGarbage(dryRun, grace, Logger, cancellationToken);

    /// <summary>The manifest of <paramref name="modelId"/>; a corrupt one is store damage naming the model.</summary>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="StoreDamageException">Its manifest is corrupt.</exception>
    public Manifest ReadManifest(ModelId modelId)
    {
        try
        {
            return Store.ReadManifest(modelId);
        }
        catch (InvalidDataException ex)
        {
            throw new StoreDamageException(modelId, null, null, $"the manifest is corrupt: {ex.Message.TrimEnd('.')}", ex);
        }
    }

    /// <summary>Ends the workers and closes the backend's connections.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Workers.Dispose();
        (Store.Backend as IDisposable)?.Dispose();
    }
}
