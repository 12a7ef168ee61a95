using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.IO;
using ZipLlm.Safetensors;

namespace ZipLlm.Store;

/// <summary>
/// Stores one model folder: hashes every file and tensor, keeps each unique one once, stores a
/// finetune's tensors as BitX deltas against the base's tensors they pair with (<see cref="DeltaPairing"/>),
/// and writes the manifest last.
/// </summary>
internal sealed class ModelIngester(ModelStore store, WorkerPool pool, ILogger logger)
{
    // Objects this ingester has found sound or written, with their lengths: each is opened to check it only once.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ContentHash, long> _sound = new();

    /// <summary>Reports bytes hashed and encoded.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>
    /// Stores the model in <paramref name="folder"/> as <paramref name="modelId"/>. Every safetensors
    /// header is validated before anything is written, so a malformed model stores nothing.
    /// </summary>
    /// <param name="modelId">The model's id.</param>
    /// <param name="folder">The model folder.</param>
    /// <param name="role">Its role in the family; a finetune's base must already be stored.</param>
    /// <param name="cancellationToken">Stops the work; nothing is listed as stored.</param>
    /// <param name="sketch">The model's lineage sketch (its bytes: the engine below lineage stores them, it does not read them), stored as an object and named in the manifest, so that later models can be scored against it.</param>
    /// <param name="revision">The hub commit the model's files are, recorded in the manifest when known.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">A safetensors file is malformed.</exception>
    /// <exception cref="EndOfStreamException">A safetensors file is truncated.</exception>
    public IngestResult Ingest(ModelId modelId, string folder, ModelRole role, CancellationToken cancellationToken = default, byte[]? sketch = null,
        string? revision = null)
    {
        var clock = Stopwatch.StartNew();
        List<string> paths = ModelFolder.Enumerate(modelId, folder);
        if (paths.Count == 0)
        {
            throw new InvalidDataException($"{modelId}: model folder {folder} holds no files.");
        }

        // Validate every safetensors header first: bad input must leave the store untouched.
        var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (string relative in paths.Where(IsSafetensors))
            {
                opened[relative] = SafetensorsFile.Open(Path.Combine(folder, relative));
            }

            Dictionary<string, StoredTensor> baseTensors = role is { Kind: ModelRoleKind.Finetune, BaseId: { } baseId }
                ? BaseTensorsByName(baseId)
                : [];
            Dictionary<ContentHash, StoredFile> storedFiles = FilesByHash();
            long[] sizes = paths.Select(p => new FileInfo(Path.Combine(folder, p)).Length).ToArray();
            long total = sizes.Sum();
            var state = new IngestState(modelId, total);
            // Files go side by side (largest first): a file's own hash is serial, so one file at a time would
            // leave the workers idle while it is computed. Each of this loop's threads makes its file's in-order pass
            // (the whole-file hash); the tensors' hashes and the chunks of every file run in the pool's one budget,
            // at most pool.Threads busy in all, where each file had pool.Threads hash loops of its own before.
            var files = new StoredFile[paths.Count];
            int[] bySize = [.. Enumerable.Range(0, paths.Count).OrderByDescending(i => sizes[i])];
            OwnedThreads.ForEach(bySize, pool.Threads, i =>
                files[i] = opened.TryGetValue(paths[i], out SafetensorsFile? safetensors)
                    ? IngestSafetensors(paths[i], safetensors, baseTensors, storedFiles, state, cancellationToken)
                    : IngestBlob(paths[i], Path.Combine(folder, paths[i]), storedFiles, state, cancellationToken),
                cancellationToken);

            ContentHash? sketchObject = sketch is null ? null : WriteSketch(sketch, state, cancellationToken);
            Manifest manifest = Manifest.Create(modelId, role.Kind, role.Kind == ModelRoleKind.Finetune ? role.BaseId : null,
                WithBases(files), total, state.AddedBytes, DateTimeOffset.UtcNow, ChunkCounts.Of(state.Transforms), sketchObject, revision);
            var commitClock = Stopwatch.StartNew();
            if (!store.CommitManifest(manifest))
            {
                // Stored by another writer meanwhile; its manifest stands, and the objects written here are the same ones.
                logger.LogInformation("{Model} was stored by another process meanwhile; its manifest is kept", modelId);
                return new IngestResult(modelId, true, 0, 0, clock.Elapsed, 0, 0, 0, 0, 0);
            }
            logger.LogDebug("{Model}: hashing {Hash:F2} s, encoding and writing {Encode:F2} s, sync and manifest {Commit:F2} s",
                modelId, state.HashTime.TotalSeconds, state.EncodeTime.TotalSeconds, commitClock.Elapsed.TotalSeconds);
            return new IngestResult(modelId, false, total, state.AddedBytes, clock.Elapsed, files.Length, state.DedupFiles,
                state.Tensors, state.DedupTensors, state.DeltaTensors, manifest.Chunks);
        }
        finally
        {
            foreach (SafetensorsFile file in opened.Values)
            {
                file.Dispose();
            }
        }
    }

    private ContentHash WriteSketch(byte[] bytes, IngestState state, CancellationToken cancellationToken)
    {
        ContentHash hash = ContentHash.Of(bytes);
        if (!IsStored(hash, bytes.Length, state) && state.Claim(hash))
        {
            state.AddBytes(WriteObject(hash, bytes.Length, stream =>
                TensorCodec.Encode(stream, ElementLayout.Bytes, RawChunkSource.FromMemory(bytes), null, default, pool, cancellationToken)));
        }
        return hash;
    }

    private StoredFile IngestBlob(string relative, string full, Dictionary<ContentHash, StoredFile> storedFiles, IngestState state, CancellationToken cancellationToken)
    {
        using SafeFileHandleSource source = SafeFileHandleSource.Open(full);
        using var digest = new FileDigest(sha256: true, xxh128: true);
        // The file's in-order pass, on its own thread as the scan of a safetensors file is; its chunks are encoded in the budget.
        ulong[] prints = HashChunks(source.Read, source.Length, digest, cancellationToken);
        (ContentHash hash, string xxh128) = (digest.Sha256(), digest.Xxh128());
        if (storedFiles.TryGetValue(hash, out StoredFile? existing) && IsStored(existing.Object, source.Length, state))
        {
            source.ThrowIfChanged();
            state.CountDedupFile();
            logger.LogDebug("{Model}: {File} is already stored (same bytes as {Other})", state.ModelId, relative, existing.Path);
            state.Advance(source.Length, Progress);
            return existing with { Path = relative, Xxh128 = xxh128 };
        }
        if (!IsStored(hash, source.Length, state) && state.Claim(hash))
        {
            // Encoded from a second read: it must be the very bytes the name was taken from.
            state.AddBytes(WriteObject(hash, source.Length, stream =>
                TensorCodec.Encode(stream, ElementLayout.Bytes, new RawChunkSource(source.Length, source.Read), null, default, pool, cancellationToken,
                    SameAs(prints, relative))));
        }
        source.ThrowIfChanged();
        state.Advance(source.Length, Progress);
        return new StoredFile(relative, source.Length, hash, StoredFileKind.Blob, hash, null, xxh128);
    }

    private StoredFile IngestSafetensors(string relative, SafetensorsFile file, Dictionary<string, StoredTensor> baseTensors,
        Dictionary<ContentHash, StoredFile> storedFiles, IngestState state, CancellationToken cancellationToken)
    {
        // Two reads side by side: the tensors in parallel, for the SHA-256 that names each one's object, and the whole
        // file in order, for the file's own hashes. Each also takes the XXH3-64 of every chunk, and the two must agree:
        // then the file's recorded hashes are of the very bytes its objects are named for.
        // The tensors' hashes are items of the pool's budget. The scan is this file's one in-order pass, like the
        // ordered consumer of its chunks, and runs beside them outside it: in the budget it measured 34% slower at
        // --threads 1 (the scan and the tensors' hashes took turns), and no faster at 2.
        var hashClock = Stopwatch.StartNew();
        Task<FileScan> scan = OwnedThreads.Start("zipllm scan", () => ScanFile(file, cancellationToken));
        SafetensorsHeader header = file.Header;
        ContentHash headerHash = ContentHash.Of(header.HeaderBytes);
        var tensorHashes = new (ContentHash Sha256, ulong[] Prints)[header.Tensors.Count];
        // Largest first, so one big tensor does not start last and leave the other workers idle.
        int[] bySize = Enumerable.Range(0, header.Tensors.Count).OrderByDescending(i => header.Tensors[i].Length).ToArray();
        try
        {
            pool.Budget.ForEach(bySize, i => tensorHashes[i] = HashTensor(file, header.Tensors[i], cancellationToken), cancellationToken);
        }
        finally
        {
            // The scan reads the file: it must be done before the caller may close it, even when the tensors failed.
            ((IAsyncResult)scan).AsyncWaitHandle.WaitOne();
        }
        FileScan whole = scan.GetAwaiter().GetResult();
        for (int i = 0; i < tensorHashes.Length; i++)
        {
            if (!whole.TensorPrints[i].AsSpan().SequenceEqual(tensorHashes[i].Prints))
            {
                throw Changed($"{relative}: tensor \"{header.Tensors[i].Name}\"");
            }
        }
        state.AddHashTime(hashClock.Elapsed);
        if (storedFiles.TryGetValue(whole.Sha256, out StoredFile? existing) && existing.Kind == StoredFileKind.Safetensors
            && IsStored(existing.Object, header.HeaderBytes.Length, state)
            && existing.Tensors!.Length == header.Tensors.Count
            && existing.Tensors.Select((t, i) => IsStored(t.Object, header.Tensors[i].Length, state)).All(ok => ok))
        {
            file.ThrowIfChanged();
            state.CountDedupFile();
            state.Advance(file.Length, Progress);
            logger.LogDebug("{Model}: {File} is already stored (same bytes as {Other})", state.ModelId, relative, existing.Path);
            return existing with { Path = relative, Xxh128 = whole.Xxh128 };
        }

        var encodeClock = Stopwatch.StartNew();
        if (!IsStored(headerHash, header.HeaderBytes.Length, state) && state.Claim(headerHash))
        {
            state.AddBytes(WriteObject(headerHash, header.HeaderBytes.Length, stream =>
                TensorCodec.Encode(stream, ElementLayout.Bytes, RawChunkSource.FromMemory(header.HeaderBytes), null, default, pool, cancellationToken)));
        }
        state.Advance(file.Header.DataOffset, Progress);

        var tensors = new StoredTensor[header.Tensors.Count];
        for (int i = 0; i < header.Tensors.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TensorInfo t = header.Tensors[i];
            (ContentHash hash, ulong[] prints) = tensorHashes[i];
            TensorEncoding encoding;
            state.CountTensor();
            // Claimed: another file of this model (a shard holding the same tensor) is storing it right now.
            if (IsStored(hash, t.Length, state) || !state.Claim(hash))
            {
                encoding = TensorEncoding.Dedup;
                state.CountDedupTensor();
            }
            else
            {
                var source = new RawChunkSource(t.Length, (offset, destination) => file.ReadTensor(t, offset, destination));
                // One reader per tensor: the base's files stay open only while they are needed.
                using ObjectStore.ObjectReader reader = store.Objects.OpenReader();
                ElementLayout layout = ElementLayouts.ForDType(t.DType);
                IChunkSource? baseSource = null;
                byte[] reference = [];
                var conversion = BaseConversion.None;
                if (baseTensors.TryGetValue(t.Name, out StoredTensor? partner) && IsPartner(partner, t, out conversion)
                    && partner.Object is var partnerHash)
                {
                    EncodedTensor baseTensor = reader.Open(partnerHash);
                    if (baseTensor.ChunkSize == pool.Options.ChunkSize)
                    {
                        baseSource = ResizedChunkSource.AtLength(baseTensor, t.Length);
                        reference = partnerHash.ToBytes();
                    }
                }
                // Encoded from a third read, each chunk checked against the first before the object is committed.
                var kind = EncodedTensorKind.Solo;
                state.AddBytes(WriteObject(hash, t.Length, stream => kind =
                    TensorCodec.Encode(stream, layout, source, baseSource, reference, pool, cancellationToken,
                        SameAs(prints, $"{relative}: tensor \"{t.Name}\""), baseSource is null ? BaseConversion.None : conversion, state.Transforms).Kind));
                // A tensor paired with a base but smaller solo in every chunk was stored solo: it needs no base.
                encoding = kind == EncodedTensorKind.Delta ? TensorEncoding.Delta : TensorEncoding.Solo;
                if (encoding == TensorEncoding.Delta)
                {
                    state.CountDeltaTensor();
                }
            }
            tensors[i] = new StoredTensor(t.Name, t.DType.Name(), t.Shape, hash, encoding);
            state.Advance(t.Length, Progress);
        }
        file.ThrowIfChanged();
        state.AddEncodeTime(encodeClock.Elapsed);
        return new StoredFile(relative, file.Length, whole.Sha256, StoredFileKind.Safetensors, headerHash, tensors, whole.Xxh128);
    }

    /// <summary>The whole file's hashes, and each chunk's XXH3-64 tensor by tensor, from one read of the file in order.</summary>
    private sealed record FileScan(ContentHash Sha256, string Xxh128, ulong[][] TensorPrints);

    private FileScan ScanFile(SafetensorsFile file, CancellationToken cancellationToken)
    {
        SafetensorsHeader header = file.Header;
        using var whole = new FileDigest(sha256: true, xxh128: true);
        Span<byte> prefix = stackalloc byte[SafetensorsFormat.LengthPrefixSize];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.HeaderBytes.Length);
        // The header as it was read and validated when the file was opened: that is what its object stores.
        whole.Append(prefix);
        whole.Append(header.HeaderBytes);
        var prints = new ulong[header.Tensors.Count][];
        for (int i = 0; i < header.Tensors.Count; i++)
        {
            TensorInfo t = header.Tensors[i];
            prints[i] = HashChunks((offset, destination) => file.ReadTensor(t, offset, destination), t.Length, whole, cancellationToken);
        }
        return new FileScan(whole.Sha256(), whole.Xxh128(), prints);
    }

    /// <summary>A check for the encoder: each chunk it reads must have the XXH3-64 the first read took of it.</summary>
    private static Action<long, ReadOnlySpan<byte>> SameAs(ulong[] prints, string name) => (index, chunk) =>
    {
        if (XxHash3.HashToUInt64(chunk) != prints[index])
        {
            throw Changed(name);
        }
    };

    private static FileChangedException Changed(string name) =>
        new($"{name} changed while it was being read; nothing of it was stored. Run compress again once the file is stable.");

    /// <summary>Writes an object of <paramref name="length"/> original bytes, and remembers it as sound.</summary>
    private long WriteObject(ContentHash hash, long length, Action<Stream> write)
    {
        long written = store.Objects.Write(hash, write);
        _sound[hash] = length;
        return written;
    }

    /// <summary>
    /// Whether an object of this name is stored and sound enough to build on: its header and chunk index read and
    /// it holds <paramref name="length"/> bytes. A damaged one (truncated, emptied, replaced) is stored again rather
    /// than trusted, so a new model never leans on an object that cannot be read. Its chunks are checked on decode.
    /// </summary>
    private bool IsStored(ContentHash hash, long length, IngestState state)
    {
        // Objects are immutable and named by their bytes: one found sound (or written) by this ingester stays so.
        if (_sound.TryGetValue(hash, out long known) && known == length)
        {
            return true;
        }
        if (!store.Objects.Contains(hash))
        {
            return false;
        }
        try
        {
            using ObjectStore.ObjectReader reader = store.Objects.OpenReader();
            if (reader.OpenWithoutBase(hash).Length == length)
            {
                _sound[hash] = length;
                store.Objects.Freshen(hash, DateTimeOffset.UtcNow); // gc's grace then counts from this reuse
                return true;
            }
            logger.LogWarning("{Model}: object {Object} is stored with the wrong length; storing it again", state.ModelId, hash);
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or NotSupportedException or IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("{Model}: object {Object} is damaged ({Reason}); storing it again", state.ModelId, hash, ex.Message);
        }
        return false;
    }

    /// <summary>
    /// Whether the base's tensor of the same name can serve as a delta's base, by <see cref="DeltaPairing"/>'s rule
    /// with resized rows and BF16/F16 conversion allowed (the base is seen at the finetune's length and dtype). A dtype
    /// the manifest names but this build does not know pairs with nothing.
    /// </summary>
    private static bool IsPartner(StoredTensor partner, TensorInfo tensor, out BaseConversion conversion)
    {
        conversion = BaseConversion.None;
        if (!DTypes.TryParse(System.Text.Encoding.UTF8.GetBytes(partner.DType), out DType partnerDType)
            || DeltaPairing.Pair(tensor.Name, tensor.DType, tensor.Shape, partner.Name, partnerDType, partner.Shape,
                DeltaPairing.Rule.Store) == DeltaPairing.Fit.None)
        {
            return false;
        }
        conversion = DeltaPairing.ConversionFor(tensor.DType, partnerDType);
        return true;
    }

    private Dictionary<string, StoredTensor> BaseTensorsByName(ModelId baseId)
    {
        var byName = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (StoredFile file in store.ReadManifest(baseId).Files)
        {
            foreach (StoredTensor tensor in file.Tensors ?? [])
            {
                byName.TryAdd(tensor.Name, tensor);
            }
        }
        return byName;
    }

    private Dictionary<ContentHash, StoredFile> FilesByHash()
    {
        var byHash = new Dictionary<ContentHash, StoredFile>();
        ManifestScan scan = store.ScanManifests();
        // A damaged manifest only means fewer whole files to find again: its model is not trusted for anything.
        foreach ((_, string problem) in scan.Damaged)
        {
            logger.LogWarning("Ignoring a damaged manifest (run verify): {Problem}", problem);
        }
        foreach (Manifest manifest in scan.Manifests)
        {
            foreach (StoredFile file in manifest.Files)
            {
                byHash.TryAdd(file.Sha256, file);
            }
        }
        return byHash;
    }

    /// <summary>
    /// The files with each delta tensor's chain of bases recorded, read from the objects' headers (a deduplicated
    /// tensor may be a delta stored by another model), so the manifest alone says what the model needs.
    /// </summary>
    private StoredFile[] WithBases(StoredFile[] files)
    {
        var chains = new Dictionary<ContentHash, ContentHash[]?>();
        ContentHash[]? ChainOf(ContentHash start)
        {
            if (!chains.TryGetValue(start, out ContentHash[]? chain))
            {
                var bases = new List<ContentHash>();
                for (ContentHash? hash = store.Objects.ReadBaseReference(start); hash is { } current; hash = store.Objects.ReadBaseReference(current))
                {
                    if (bases.Count >= ObjectStore.MaxDeltaDepth || current == start || bases.Contains(current))
                    {
                        throw new InvalidDataException($"Object {start}: chain of deltas deeper than {ObjectStore.MaxDeltaDepth} or circular; the store is corrupt.");
                    }
                    bases.Add(current);
                }
                chain = bases.Count == 0 ? null : [.. bases];
                chains[start] = chain;
            }
            return chain;
        }

        return files.Select(file => file.Tensors is null ? file : file with
        {
            Tensors = file.Tensors.Select(t => t with { Bases = ChainOf(t.Object) }).ToArray(),
        }).ToArray();
    }

    private (ContentHash Sha256, ulong[] Prints) HashTensor(SafetensorsFile file, TensorInfo tensor, CancellationToken cancellationToken)
    {
        // Marks itself, so that a tensor hashed outside the budget would show in its peak (inside, it counts once).
        using WorkerBudget.Scope busy = pool.Budget.Enter();
        using var digest = new FileDigest(sha256: true, xxh128: false);
        ulong[] prints = HashChunks((offset, destination) => file.ReadTensor(tensor, offset, destination), tensor.Length, digest, cancellationToken);
        return (digest.Sha256(), prints);
    }

    /// <summary>
    /// Hashes <paramref name="length"/> bytes into <paramref name="digest"/>, read chunk by chunk as the encoder will
    /// read them, and returns each chunk's XXH3-64: the encoder's read is checked against them.
    /// </summary>
    private ulong[] HashChunks(ReadAt read, long length, FileDigest digest, CancellationToken cancellationToken)
    {
        int chunkSize = pool.Options.ChunkSize;
        var prints = new ulong[EncodedTensorFormat.ChunkCount(length, chunkSize)];
        ChunkBuffer buffer = pool.Buffers.Rent((int)Math.Min(chunkSize, Math.Max(length, 1)));
        try
        {
            for (long done = 0, index = 0; done < length; index++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = (int)Math.Min(chunkSize, length - done);
                Span<byte> chunk = buffer.AsSpan(0, n);
                read(done, chunk);
                digest.Append(chunk);
                prints[index] = XxHash3.HashToUInt64(chunk);
                done += n;
            }
        }
        finally
        {
            pool.Buffers.Return(buffer);
        }
        return prints;
    }


    private static bool IsSafetensors(string relative) => relative.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    /// <summary>Counters of one ingest, updated by the files being stored side by side.</summary>
    private sealed class IngestState(ModelId modelId, long total)
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<ContentHash, byte> _claimed = new();
        private long _done, _addedBytes, _hashTicks, _encodeTicks;
        private int _dedupFiles, _tensors, _dedupTensors, _deltaTensors;

        public ModelId ModelId { get; } = modelId;
        public TransformCounts Transforms { get; } = new();
        public long AddedBytes => Interlocked.Read(ref _addedBytes);
        public int DedupFiles => _dedupFiles;
        public int Tensors => _tensors;
        public int DedupTensors => _dedupTensors;
        public int DeltaTensors => _deltaTensors;
        public TimeSpan HashTime => TimeSpan.FromTicks(Interlocked.Read(ref _hashTicks));
        public TimeSpan EncodeTime => TimeSpan.FromTicks(Interlocked.Read(ref _encodeTicks));

        /// <summary>Whether this caller is the one to store <paramref name="hash"/> in this ingest.</summary>
        public bool Claim(ContentHash hash) => _claimed.TryAdd(hash, 0);

        public void AddBytes(long bytes) => Interlocked.Add(ref _addedBytes, bytes);
        public void CountDedupFile() => Interlocked.Increment(ref _dedupFiles);
        public void CountTensor() => Interlocked.Increment(ref _tensors);
        public void CountDedupTensor() => Interlocked.Increment(ref _dedupTensors);
        public void CountDeltaTensor() => Interlocked.Increment(ref _deltaTensors);
        public void AddHashTime(TimeSpan time) => Interlocked.Add(ref _hashTicks, time.Ticks);
        public void AddEncodeTime(TimeSpan time) => Interlocked.Add(ref _encodeTicks, time.Ticks);

        public void Advance(long bytes, IProgress<ByteProgress>? progress)
        {
            long done = Interlocked.Add(ref _done, bytes);
            progress?.Report(new ByteProgress(ModelId.ToString(), done, total));
        }
    }

    private sealed class SafeFileHandleSource : IDisposable
    {
        private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;
        private readonly string _path;
        private readonly FileVersion _version;

        private SafeFileHandleSource(string path, Microsoft.Win32.SafeHandles.SafeFileHandle handle)
        {
            _path = path;
            _handle = handle;
            _version = FileVersion.Of(handle, path);
            Length = RandomAccess.GetLength(handle);
        }

        /// <summary>Throws when the file changed since it was opened.</summary>
        public void ThrowIfChanged() => _version.ThrowIfChanged(_handle, _path, _path);

        public long Length { get; }

        public static SafeFileHandleSource Open(string path) =>
            new(path, File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan));

        public void Read(long offset, Span<byte> destination) => PositionalRead.ReadExactly(_handle, destination, offset, _path);

        public void Dispose() => _handle.Dispose();
    }
}
