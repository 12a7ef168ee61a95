using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Lineage;
using ZipLlm.Safetensors;
using ZipLlm.Session;
using ZipLlm.Store;
using ZipLlm.Store.Backends;

namespace ZipLlm;

/// <summary>
/// A ZipLLM store opened by a program: list the models it holds, store a model folder, restore a model, and read one
/// file or one tensor of a stored model without restoring the rest. The same store the <c>zipllm</c> command uses,
/// with the same guarantees: every operation that reads holds the store's lock shared (as <c>zipllm restore</c> does),
/// so a <c>remove</c> or <c>gc</c> in another process waits for it and never deletes what is being read.
/// </summary>
/// <remarks>
/// <para>
/// Model ids are <c>org/name</c> strings. Every method may be called from several threads at once; a
/// <see cref="Stream"/> from <see cref="OpenFile"/> is for one thread at a time, as streams are.
/// </para>
/// <para>
/// Failures: <see cref="KeyNotFoundException"/> for a model or tensor the store does not hold (naming it),
/// <see cref="FileNotFoundException"/> for a file a stored model does not have, <see cref="ArgumentException"/> for a
/// malformed id or a buffer too small, <see cref="StoreDamageException"/> (an <see cref="IOException"/>) when stored
/// bytes cannot be read back as recorded, naming the model, file and object, <see cref="StoreLockLostException"/> (an
/// <see cref="IOException"/>) when the store lock an operation ran under was lost meanwhile (a bucket's lease not renewed
/// in time, or broken by another process, which may have removed or changed what was read: never said to be damage; the
/// next call takes the lock anew and reads the manifests again), <see cref="IOException"/> for other I/O failures, and <see cref="OperationCanceledException"/> when a token stops the work.
/// </para>
/// </remarks>
/// <example>
/// <code>
/// using ZipLlmStore store = ZipLlmStore.Open("store");
/// foreach (StoredModel model in store.ListModels())
///     Console.WriteLine($"{model.Id}: {model.OriginalBytes} bytes in, {model.AddedBytes} stored");
/// StoredModelTensor info = store.GetTensorInfo("org/model", "lm_head.weight");
/// byte[] bytes = new byte[info.Length];
/// store.ReadTensor("org/model", "lm_head.weight", bytes);
/// </code>
/// </example>
public sealed class ZipLlmStore : IDisposable, IAsyncDisposable
{
    private readonly StoreSession _session;
    private readonly ILogger _logger;
    private readonly LingeringStoreLock _reads;
    // Each manifest as read under the reads' lock, and in which of its epochs: while that lasts, no manifest changes.
    private readonly ConcurrentDictionary<ModelId, (long Epoch, Manifest Manifest)> _heldManifests = new();
    private readonly DecodedChunkCache _cache;
    private readonly Lock _fileReadsGate = new();
    // The file reads of the reads' lock's current epoch (their open objects are good while it is held).
    private StoredFileReads? _fileReads;
    private int _disposed;

    /// <summary>The most <see cref="ZipLlmStoreOptions.CacheMegabytes"/> may be: 1 TiB.</summary>
    private const int MaxCacheMegabytes = 1 << 20;

    private ZipLlmStore(StoreSession session, TimeSpan readLockLinger, DecodedChunkCache cache)
    {
        _session = session;
        _cache = cache;
        _logger = session.Logger;
        _reads = new LingeringStoreLock(token => session.LockStore(exclusive: false, token), readLockLinger, session.Time);
    }

    private ModelStore Store => _session.Store;

    /// <summary>The engine session under this facade, for the hub mirror's compress with lineage choosing the base.</summary>
    internal StoreSession Session => _session;

    /// <summary>Where the store is: its folder, or its <c>s3://BUCKET/PREFIX</c>.</summary>
    public string Location => _session.Location;

    /// <summary>
    /// Opens the store at <paramref name="storeLocation"/>: a folder, or <c>s3://BUCKET/PREFIX</c> for a store in a
    /// bucket (the client configured from the AWS environment variables and profiles, as the <c>zipllm</c> command is).
    /// </summary>
    /// <param name="storeLocation">The store's folder (the <c>storage_dir</c> of a config), or its S3 URL.</param>
    /// <param name="options">Threads, creation, logging; defaults when null.</param>
    /// <remarks>
    /// The store's workers are threads of its own, started here and ended by <see cref="Dispose"/>; no call blocks a
    /// thread-pool thread (an async method's work runs on threads of the store's), and nothing process-wide is changed.
    /// </remarks>
    /// <exception cref="ArgumentException">
    /// The location is empty, the S3 URL is malformed, or <see cref="ZipLlmStoreOptions.Threads"/> or
    /// <see cref="ZipLlmStoreOptions.ReadLockLinger"/> is out of range.
    /// </exception>
    /// <exception cref="DirectoryNotFoundException">There is no store there and <see cref="ZipLlmStoreOptions.CreateIfMissing"/> is not set.</exception>
    /// <exception cref="NotSupportedException">The store is of a newer or unknown format.</exception>
    /// <exception cref="IOException">The location holds something that is not a store, or cannot be reached.</exception>
    public static ZipLlmStore Open(string storeLocation, ZipLlmStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(storeLocation);
        options ??= new ZipLlmStoreOptions();
        if (options.Threads is < 0 or > WorkerPool.MaxThreads)
        {
            throw new ArgumentException($"Threads is {options.Threads}; it must be 0 (one per processor) to {WorkerPool.MaxThreads}.", nameof(options));
        }
        if (options.CacheMegabytes is < 0 or > MaxCacheMegabytes)
        {
            throw new ArgumentException($"CacheMegabytes is {options.CacheMegabytes}; it must be 0 to {MaxCacheMegabytes}.", nameof(options));
        }
        if (options.ReadLockLinger < TimeSpan.Zero || options.ReadLockLinger > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentException($"ReadLockLinger is {options.ReadLockLinger}; it must be zero to 10 minutes.", nameof(options));
        }
        StoreSession session = StoreSession.Open(storeLocation, new StoreSessionOptions
        {
            Threads = options.Threads,
            Create = options.CreateIfMissing,
            Logger = options.Logger ?? NullLogger.Instance,
        });
        return new ZipLlmStore(session, options.ReadLockLinger, new DecodedChunkCache(options.CacheMegabytes * (1L << 20)));
    }

    /// <summary>A store over an open session, which it owns from here on (tests: a bucket with short leases, on a clock of theirs).</summary>
    internal static ZipLlmStore Open(StoreSession session, ZipLlmStoreOptions options) =>
        new(session, options.ReadLockLinger, new DecodedChunkCache(options.CacheMegabytes * (1L << 20)));

    /// <summary>Every model the store holds, ordered by id. A manifest that is damaged is left out and logged as a warning (<c>zipllm verify</c> names it).</summary>
    /// <exception cref="IOException">The store cannot be read.</exception>
    public IReadOnlyList<StoredModel> ListModels(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        using IDisposable storeLock = _reads.Enter(cancellationToken);
        ManifestScan scan = Store.ScanManifests();
        foreach ((string path, string problem) in scan.Damaged)
        {
            _logger.LogWarning("Left out of the listing: {Path}: {Problem}", path, problem);
        }
        Dictionary<ModelId, ModelRoleKind> roles = Manifest.RolesAmong(scan.Manifests);
        return scan.Manifests.Select(m => ToPublic(m, roles[m.Id])).ToList();
    }

    /// <inheritdoc cref="ListModels"/>
    public Task<IReadOnlyList<StoredModel>> ListModelsAsync(CancellationToken cancellationToken = default) =>
        _session.RunAsync("list", () => ListModels(cancellationToken));

    /// <summary>The stored model <paramref name="modelId"/>, its files and tensors.</summary>
    /// <remarks>Its <see cref="StoredModel.Role"/> is a base when another stored model is a finetune of it, which reads every manifest of the store.</remarks>
    /// <exception cref="ArgumentException"><paramref name="modelId"/> is not of the form <c>org/name</c>.</exception>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="StoreDamageException">Its manifest is damaged.</exception>
    public StoredModel GetModel(string modelId)
    {
        ModelId id = ParseId(modelId);
        ThrowIfDisposed();
        using IDisposable storeLock = _reads.Enter(CancellationToken.None);
        Manifest manifest = ReadHeldManifest(id);
        // The others' damaged manifests do not matter here: what names this model as its base is what reads.
        List<Manifest> all = [.. Store.ScanManifests().Manifests.Where(m => m.Id != id), manifest];
        return ToPublic(manifest, Manifest.RolesAmong(all)[id]);
    }

    /// <summary>Whether the store holds <paramref name="modelId"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="modelId"/> is not of the form <c>org/name</c>.</exception>
    public bool Contains(string modelId)
    {
        ThrowIfDisposed();
        return Store.Contains(ParseId(modelId));
    }

    /// <summary>The dtype, shape and byte length of tensor <paramref name="tensorName"/> of <paramref name="modelId"/>, and the file that holds it.</summary>
    /// <exception cref="ArgumentException">
    /// <paramref name="modelId"/> is not of the form <c>org/name</c>, or more than one file of the model has a tensor of that name.
    /// </exception>
    /// <exception cref="KeyNotFoundException">The model is not stored, or has no tensor of that name.</exception>
    /// <exception cref="StoreDamageException">Its manifest is damaged.</exception>
    public StoredModelTensor GetTensorInfo(string modelId, string tensorName)
    {
        ModelId id = ParseId(modelId);
        (StoredFile file, StoredTensor tensor) = FindTensor(ReadManifest(id), tensorName);
        return ToPublic(file, tensor);
    }

    /// <summary>
    /// Stores the model in <paramref name="modelFolder"/> as <paramref name="modelId"/>: every file, each unique file
    /// and tensor once, a finetune's tensors as deltas against those of <paramref name="baseModelId"/> where that is
    /// smaller. The model is stored only once all of it is: a failure or a cancellation leaves it not stored (objects
    /// already written stay until <c>zipllm gc</c>). A model already stored is skipped.
    /// </summary>
    /// <param name="modelFolder">The model's folder: its safetensors files and every other file.</param>
    /// <param name="modelId">The id to store it under, <c>org/name</c>.</param>
    /// <param name="baseModelId">
    /// The stored model it is a finetune of, or null to store it on its own (<c>zipllm compress</c> measures which
    /// stored model a new one is closest to; here the caller says).
    /// </param>
    /// <param name="progress">Gets bytes hashed and encoded.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <exception cref="ArgumentException">
    /// An id is not of the form <c>org/name</c>, the base is the model itself, or the base already ends a chain of
    /// bases as long as a chain may be (8, as <c>zipllm compress --max-depth</c> allows at most); nothing was stored.
    /// </exception>
    /// <exception cref="KeyNotFoundException">The base model is not stored.</exception>
    /// <exception cref="StoreDamageException">The base model's manifest is damaged.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is malformed (a safetensors header that lies, a name that is not UTF-8 ...); nothing was stored.</exception>
    /// <exception cref="EndOfStreamException">A safetensors file is truncated; nothing was stored.</exception>
    /// <exception cref="IOException">A file changed while it was read, or the store cannot be written.</exception>
    /// <exception cref="StoreLockLostException">The store lock was lost while it ran (a bucket's lease broken or run out): another process may have changed what it used; run it again.</exception>
    public Task<CompressSummary> CompressAsync(string modelFolder, string modelId, string? baseModelId = null, IProgress<ZipLlmProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelFolder);
        ModelId id = ParseId(modelId);
        ModelId? baseId = baseModelId is null ? null : ModelId.Parse(baseModelId, nameof(baseModelId));
        if (baseId == id)
        {
            throw new ArgumentException($"{id} cannot be its own base.", nameof(baseModelId));
        }
        ThrowIfDisposed();
        return _session.RunAsync("compress", () => Compress(modelFolder, id, baseId, progress, cancellationToken));
    }

    private CompressSummary Compress(string folder, ModelId id, ModelId? baseId, IProgress<ZipLlmProgress>? progress, CancellationToken cancellationToken)
    {
        using IDisposable storeLock = _session.LockStore(exclusive: false, cancellationToken);
        if (baseId is { } requiredBase)
        {
            // Refused before anything is read or written (the session checks again once the model is sketched).
            _session.CheckBase(id, requiredBase);
        }
        ModelRole role = baseId is { } b ? new ModelRole(ModelRoleKind.Finetune, b) : ModelRole.Standalone;
        IngestResult result;
        try
        {
            result = _session.Compress(id, folder, _ => role, null, Adapt(progress), cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or KeyNotFoundException && ex is not StoreLockLostException && ILosableLock.WasLost(storeLock))
        {
            // A base's object or manifest gone, or the lease seen lost at the manifest: another process's remove or gc, no damage.
            throw new StoreLockLostException(Location, $"storing {id}", ex);
        }
        return new CompressSummary(id.ToString(), result.Skipped, result.OriginalBytes, result.AddedBytes, result.Elapsed, result.DeltaTensors, result.DedupTensors);
    }

    /// <summary>
    /// Rebuilds the folder of <paramref name="modelId"/> in <paramref name="outputFolder"/>, bit for bit. Files are
    /// written into a staging folder inside it and put in place only once every one matches the hash recorded when it
    /// was stored; a failure or a cancellation leaves the folder as it was (but for folders created on the way).
    /// </summary>
    /// <param name="modelId">The stored model.</param>
    /// <param name="outputFolder">Where its files go; created when missing; must be empty unless <paramref name="overwrite"/>.</param>
    /// <param name="overwrite">
    /// Write into a folder that is not empty: the model's files replace what is at their paths, and every other entry
    /// of the folder is deleted (refused for the file-system root, the home folder and a folder holding the store).
    /// </param>
    /// <param name="progress">Gets bytes decoded and written.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <exception cref="ArgumentException">The id is not of the form <c>org/name</c>, or the folder is one that is never swept.</exception>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="StoreDamageException">Stored bytes cannot be read back, or a file does not match its hash.</exception>
    /// <exception cref="IOException">The folder is not empty (without <paramref name="overwrite"/>), another restore is writing into it, or it cannot be written.</exception>
    /// <exception cref="StoreLockLostException">The store lock was lost while it ran (a bucket's lease broken or run out): another process may have changed what it used; run it again.</exception>
    public Task<RestoreSummary> RestoreAsync(string modelId, string outputFolder, bool overwrite = false, IProgress<ZipLlmProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputFolder);
        ModelId id = ParseId(modelId);
        ThrowIfDisposed();
        return _session.RunAsync("restore", () =>
        {
            using IDisposable storeLock = _reads.Enter(cancellationToken);
            long epoch = _reads.Epoch;
            try
            {
                RestoreResult result = _session.Restore(id, outputFolder, new RestoreRequest(overwrite), Adapt(progress), cancellationToken);
                return new RestoreSummary(id.ToString(), result.Files, result.Bytes, result.Elapsed);
            }
            catch (StoreDamageException ex) when (_reads.WasLost(epoch))
            {
                throw LingeringStoreLock.LostDuring(Location, $"restoring {id}", ex);
            }
        });
    }

    /// <summary>
    /// Decodes every file of <paramref name="modelId"/>, or of every stored model when it is null, and checks each
    /// against the hashes recorded when it was stored (SHA-256, and XXH3-128 where recorded), and every object a model
    /// needs and each delta's chain of bases; damage is reported, and the rest still checked. Nothing is written.
    /// </summary>
    /// <param name="modelId">The model to check, or null for every stored model.</param>
    /// <param name="progress">Gets bytes checked.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <returns>Each model checked with its problems (none when intact), and the manifests that cannot be read.</returns>
    /// <exception cref="ArgumentException"><paramref name="modelId"/> is not of the form <c>org/name</c>.</exception>
    /// <exception cref="KeyNotFoundException">The model named is not stored.</exception>
    /// <exception cref="IOException">The store cannot be read for a reason that is not damage.</exception>
    /// <exception cref="StoreLockLostException">The store lock was lost while it ran (a bucket's lease broken or run out): another process may have changed what it used; run it again.</exception>
    public Task<VerifySummary> VerifyAsync(string? modelId = null, IProgress<ZipLlmProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ModelId? id = modelId is null ? null : ParseId(modelId);
        ThrowIfDisposed();
        return _session.RunAsync("verify", () =>
        {
            using IDisposable storeLock = _reads.Enter(cancellationToken);
            long epoch = _reads.Epoch;
            VerifyReport report;
            try
            {
                report = _session.Verify(id, Adapt(progress), null, cancellationToken);
            }
            catch (StoreDamageException ex) when (_reads.WasLost(epoch))
            {
                throw LingeringStoreLock.LostDuring(Location, "verifying", ex);
            }
            if (report.FirstProblem is { } problem && _reads.WasLost(epoch))
            {
                // What it found missing or changed, another process's remove or gc explains: no verdict on the store.
                throw LingeringStoreLock.LostDuring(Location, "verifying", new IOException(problem));
            }
            return new VerifySummary(report.Models.Select(m => new VerifiedModel(m.ModelId.ToString(), m.Problems)).ToList(), report.DamagedManifests);
        });
    }

    /// <summary>
    /// Opens file <paramref name="path"/> of <paramref name="modelId"/> as a read-only, seekable stream of its original
    /// bytes. Only what is read is decoded: one chunk (4 MiB at most) of one tensor at a time, kept while reads stay
    /// in it, so a seek costs nothing and reading one tensor of a large file decodes that tensor alone. Each chunk is
    /// checked against the checksum stored with it; the file's own hash is checked by <see cref="RestoreAsync"/>.
    /// </summary>
    /// <remarks>The stream holds the store's lock shared until it is disposed: a <c>zipllm gc</c> or <c>remove</c> waits for it.</remarks>
    /// <param name="modelId">The stored model.</param>
    /// <param name="path">The file's path inside the model folder, with <c>/</c> separators, as <see cref="StoredModelFile.Path"/> gives it.</param>
    /// <exception cref="ArgumentException">The id is not of the form <c>org/name</c>.</exception>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="FileNotFoundException">The model has no file at <paramref name="path"/>.</exception>
    /// <exception cref="StoreDamageException">The file's stored header cannot be read back. Reads fail the same way on a damaged chunk.</exception>
    /// <exception cref="StoreLockLostException">The store lock was lost while it ran (a bucket's lease broken or run out): another process may have changed what it used; run it again.</exception>
    public Stream OpenFile(string modelId, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        ModelId id = ParseId(modelId);
        ThrowIfDisposed();
        IDisposable storeLock = _session.LockStore(exclusive: false, CancellationToken.None);
        try
        {
            Manifest manifest = ReadManifest(id);
            StoredFile file = manifest.Files.FirstOrDefault(f => f.Path == path)
                ?? throw new FileNotFoundException($"Model {id} has no file \"{path}\" (it has {manifest.Files.Length}: {Listing(manifest.Files.Select(f => f.Path))}).", path);
            return StoredFileStream.Open(Store, _session.Workers, id, file, storeLock);
        }
        catch
        {
            storeLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies bytes of file <paramref name="path"/> of <paramref name="modelId"/>, from <paramref name="offset"/>, into
    /// <paramref name="destination"/> until it is full or the file ends: a random-access read for servers and other
    /// long-lived readers. Only the chunks the range covers are decoded, each checked against its checksum, on the
    /// store's workers; decoded chunks are kept in one cache for every file (<see cref="ZipLlmStoreOptions.CacheMegabytes"/>),
    /// and a chunk many readers want at once is decoded once. No thread-pool thread waits for the work.
    /// </summary>
    /// <remarks>
    /// Reads share the store's lock (<see cref="ZipLlmStoreOptions.ReadLockLinger"/>): a <c>zipllm remove</c> or
    /// <c>gc</c> elsewhere waits until reads pause for that long. Any number of calls may run at once.
    /// </remarks>
    /// <param name="modelId">The stored model.</param>
    /// <param name="path">The file's path inside the model folder, as <see cref="StoredModelFile.Path"/> gives it.</param>
    /// <param name="offset">Where in the file to start.</param>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="cancellationToken">Stops the wait; a chunk being decoded for other readers goes on.</param>
    /// <returns>Bytes copied: fewer than <paramref name="destination"/> holds only at the end of the file, 0 at or past it.</returns>
    /// <exception cref="ArgumentException">The id is not of the form <c>org/name</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is negative.</exception>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="FileNotFoundException">The model has no file at <paramref name="path"/>.</exception>
    /// <exception cref="StoreDamageException">Stored bytes the range needs cannot be read back as recorded (naming model, file and object).</exception>
    /// <exception cref="StoreLockLostException">The store lock was lost while it ran (a bucket's lease broken or run out): another process may have changed what it used; run it again.</exception>
    public ValueTask<int> ReadFileAsync(string modelId, string path, long offset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        ReadVersionAsync(modelId, path, sha256: null, offset, destination, cancellationToken);

    /// <summary>
    /// As <see cref="ReadFileAsync"/>, but only from the version of
    /// the file whose SHA-256 is <paramref name="sha256"/> (its <see cref="StoredModelFile.Sha256"/> when listed): a reader
    /// that holds a file open (a mount's open file) never gets the bytes of another version stored under its path since.
    /// </summary>
    /// <param name="modelId">The stored model.</param>
    /// <param name="path">The file's path inside the model folder.</param>
    /// <param name="sha256">The SHA-256 of the version to read, 64 lowercase hex characters, as listed.</param>
    /// <param name="offset">Where in the file to start.</param>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="cancellationToken">Stops the wait.</param>
    /// <returns>Bytes copied: fewer than <paramref name="destination"/> holds only at the end of the file, 0 at or past it.</returns>
    /// <exception cref="ArgumentException">The id is not of the form <c>org/name</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is negative.</exception>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="FileNotFoundException">The model has no file at <paramref name="path"/>.</exception>
    /// <exception cref="IOException">The model stores another version of the file at <paramref name="path"/> now (it was removed and stored again).</exception>
    /// <exception cref="StoreDamageException">Stored bytes the range needs cannot be read back as recorded.</exception>
    /// <exception cref="StoreLockLostException">The store lock was lost while it ran (a bucket's lease broken or run out): another process may have changed what it used; run it again.</exception>
    public ValueTask<int> ReadFileVersionAsync(string modelId, string path, string sha256, long offset, Memory<byte> destination,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sha256);
        return ReadVersionAsync(modelId, path, sha256, offset, destination, cancellationToken);
    }

    private async ValueTask<int> ReadVersionAsync(string modelId, string path, string? sha256, long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ModelId id = ParseId(modelId);
        ThrowIfDisposed();
        using IDisposable storeLock = _reads.TryEnter() ?? await _session.RunAsync("lock", () => _reads.Enter(cancellationToken)).ConfigureAwait(false);
        long epoch = _reads.Epoch;
        Manifest manifest = _heldManifests.TryGetValue(id, out var held) && held.Epoch == epoch
            ? held.Manifest
            : await _session.RunAsync("manifest", () => ReadHeldManifest(id)).ConfigureAwait(false);
        StoredFile file = manifest.Files.FirstOrDefault(f => f.Path == path)
            ?? throw new FileNotFoundException($"Model {id} has no file \"{path}\" (it has {manifest.Files.Length}: {Listing(manifest.Files.Select(f => f.Path))}).", path);
        if (sha256 is not null && !string.Equals(file.Sha256.Hex, sha256, StringComparison.Ordinal))
        {
            throw new IOException($"{id}: {path} is stored with other bytes now (SHA-256 {file.Sha256.Hex}) than the version read (SHA-256 {sha256}); it was stored again since.");
        }
        try
        {
            return await FileReadsOf(epoch).ReadAsync(id, file, offset, destination, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreDamageException ex) when (_reads.WasLost(epoch))
        {
            throw LingeringStoreLock.LostDuring(Location, $"reading {id}", ex);
        }
    }

    /// <summary>The file reads of lock epoch <paramref name="epoch"/>, which the caller holds: those of an earlier epoch have no reader left, and close.</summary>
    private StoredFileReads FileReadsOf(long epoch)
    {
        lock (_fileReadsGate)
        {
            if (_fileReads is { } current && current.Epoch == epoch)
            {
                return current;
            }
            _fileReads?.Dispose();
            _fileReads = new StoredFileReads(_session, _cache, epoch);
            return _fileReads;
        }
    }

    /// <summary>
    /// Decodes tensor <paramref name="tensorName"/> of <paramref name="modelId"/> into <paramref name="destination"/>,
    /// on the store's workers, without reading any other tensor (but the bases a delta is decoded against).
    /// </summary>
    /// <returns>Bytes written: the tensor's <see cref="StoredModelTensor.Length"/>.</returns>
    /// <exception cref="ArgumentException">
    /// The id is not of the form <c>org/name</c>, more than one file has a tensor of that name, or
    /// <paramref name="destination"/> is shorter than the tensor (see <see cref="GetTensorInfo"/>).
    /// </exception>
    /// <exception cref="KeyNotFoundException">The model is not stored, or has no tensor of that name.</exception>
    /// <exception cref="StoreDamageException">The tensor's object, or a base it needs, cannot be read back.</exception>
    /// <exception cref="OperationCanceledException">The token stopped the work; <paramref name="destination"/> holds part of the tensor.</exception>
    public int ReadTensor(string modelId, string tensorName, Span<byte> destination, CancellationToken cancellationToken = default)
    {
        unsafe
        {
            fixed (byte* start = destination)
            {
                return ReadTensor(modelId, tensorName, (nint)start, destination.Length, cancellationToken);
            }
        }
    }

    /// <inheritdoc cref="ReadTensor(string, string, Span{byte}, CancellationToken)"/>
    public Task<int> ReadTensorAsync(string modelId, string tensorName, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _session.RunAsync("read", () =>
        {
            unsafe
            {
                using System.Buffers.MemoryHandle pin = destination.Pin();
                return ReadTensor(modelId, tensorName, (nint)pin.Pointer, destination.Length, cancellationToken);
            }
        });
    }

    private unsafe int ReadTensor(string modelId, string tensorName, nint destination, int capacity, CancellationToken cancellationToken)
    {
        ModelId id = ParseId(modelId);
        ThrowIfDisposed();
        using IDisposable storeLock = _reads.Enter(cancellationToken);
        long epoch = _reads.Epoch;
        Manifest manifest = ReadHeldManifest(id);
        (StoredFile file, StoredTensor tensor) = FindTensor(manifest, tensorName);
        long length = TensorLength(tensor);
        if (length > capacity)
        {
            throw new ArgumentException($"Tensor \"{tensorName}\" of {id} is {length} bytes; the destination holds {capacity}.", "destination");
        }
        using ObjectStore.ObjectReader reader = Store.Objects.OpenReader();
        try
        {
            IChunkSource source = reader.OpenSource(tensor.Object);
            if (source.Length != length)
            {
                throw new StoreDamageException(id, file.Path, tensor.Object,
                    $"tensor \"{tensor.Name}\" is {source.Length} bytes in its object, where its dtype and shape make {length}");
            }
            long position = 0;
            TensorCodec.Decode(source, _session.Workers.Options.ChunkSize, _session.Workers, chunk =>
            {
                chunk.CopyTo(new Span<byte>((byte*)destination + position, chunk.Length));
                position += chunk.Length;
            }, cancellationToken);
            return (int)length;
        }
        catch (StoreDamageException ex) when (_reads.WasLost(epoch))
        {
            throw LingeringStoreLock.LostDuring(Location, $"reading {id}", ex);
        }
        catch (StoreDamageException ex)
        {
            throw ex.InFile(id, file.Path);
        }
    }

    /// <summary>Releases the store's workers and connections. Streams opened from it must be disposed of on their own.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _reads.Dispose();
        lock (_fileReadsGate)
        {
            _fileReads?.Dispose();
        }
        _session.Dispose();
    }

    /// <inheritdoc cref="Dispose"/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private static ModelId ParseId(string modelId)
    {
        ArgumentNullException.ThrowIfNull(modelId);
        return ModelId.Parse(modelId, nameof(modelId));
    }

    /// <summary>The manifest of <paramref name="id"/>, read once for as long as the reads' lock (which the caller holds) lasts.</summary>
    private Manifest ReadHeldManifest(ModelId id)
    {
        long epoch = _reads.Epoch;
        if (_heldManifests.TryGetValue(id, out var held) && held.Epoch == epoch)
        {
            return held.Manifest;
        }
        Manifest manifest = ReadManifest(id);
        _heldManifests[id] = (epoch, manifest);
        return manifest;
    }

    private Manifest ReadManifest(ModelId id)
    {
        ThrowIfDisposed();
        return _session.ReadManifest(id);
    }

    private static (StoredFile File, StoredTensor Tensor) FindTensor(Manifest manifest, string tensorName)
    {
        ArgumentNullException.ThrowIfNull(tensorName);
        var found = manifest.Files
            .SelectMany(f => (f.Tensors ?? []).Where(t => t.Name == tensorName).Select(t => (File: f, Tensor: t)))
            .Take(2)
            .ToList();
        return found.Count switch
        {
            1 => found[0],
            0 => throw new KeyNotFoundException($"Model {manifest.Id} has no tensor \"{tensorName}\"."),
            _ => throw new ArgumentException(
                $"Model {manifest.Id} has a tensor \"{tensorName}\" in more than one file ({found[0].File.Path}, {found[1].File.Path}); open the file with OpenFile instead.",
                nameof(tensorName)),
        };
    }

    private static long TensorLength(StoredTensor tensor) =>
        tensor.ByteLength() ?? throw new InvalidDataException($"tensor \"{tensor.Name}\" has dtype {tensor.DType}, which this build does not read.");

    private static string Listing(IEnumerable<string> names)
    {
        List<string> all = names.ToList();
        return all.Count <= 5 ? string.Join(", ", all) : string.Join(", ", all.Take(5)) + ", ...";
    }

    private static IProgress<ByteProgress>? Adapt(IProgress<ZipLlmProgress>? progress) =>
        progress is null ? null : new ProgressAdapter(progress);

    private static StoredModel ToPublic(Manifest manifest, ModelRoleKind role) => new(
        manifest.Id.ToString(),
        role switch
        {
            ModelRoleKind.Base => StoredModelRole.Base,
            ModelRoleKind.Finetune => StoredModelRole.Finetune,
            _ => StoredModelRole.Standalone,
        },
        manifest.BaseId?.ToString(),
        manifest.Files.Select(f => new StoredModelFile(f.Path, f.Size, f.Sha256.Hex, f.Kind == StoredFileKind.Safetensors,
            (f.Tensors ?? []).Select(t => ToPublic(f, t)).ToList())).ToList(),
        manifest.OriginalBytes,
        manifest.AddedBytes,
        manifest.StoredAt,
        manifest.Revision);

    private static StoredModelTensor ToPublic(StoredFile file, StoredTensor tensor) =>
        new(file.Path, tensor.Name, tensor.DType, tensor.Shape.ToArray(), TensorLength(tensor));

    private sealed class ProgressAdapter(IProgress<ZipLlmProgress> inner) : IProgress<ByteProgress>
    {
        public void Report(ByteProgress value) => inner.Report(new ZipLlmProgress(value.Item, value.DoneBytes, value.TotalBytes));
    }
}
