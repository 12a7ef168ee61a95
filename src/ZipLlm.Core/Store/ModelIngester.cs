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
internal sealed partial class ModelIngester(ModelStore store, WorkerPool pool, ILogger logger)
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
            StoredFileLookup storedFiles = FilesByHash();
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

    private StoredFile IngestBlob(string relative, string full, StoredFileLookup storedFiles, IngestState state, CancellationToken cancellationToken)
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
        StoredFileLookup storedFiles, IngestState state, CancellationToken cancellationToken)
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

    /// <summary>Writes an object of <paramref name="length"/> original bytes, and remembers it as sound.</summary>
    private long WriteObject(ContentHash hash, long length, Action<Stream> write)
    {
        long written = store.Objects.Write(hash, write);
        _sound[hash] = length;
        return written;
    }

    private static bool IsSafetensors(string relative) => relative.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
}
