using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Win32.SafeHandles;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.IO;
using ZipLlm.Safetensors;
using ZipLlm.Store.Backends;

namespace ZipLlm.Store;

/// <summary>What restoring a model did.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Files">Files written.</param>
/// <param name="Bytes">Bytes written.</param>
/// <param name="Elapsed">Wall time, verification included.</param>
internal sealed record RestoreResult(ModelId ModelId, int Files, long Bytes, TimeSpan Elapsed)
{
    /// <summary>Output throughput in MB/s.</summary>
    public double MegabytesPerSecond => Elapsed.TotalSeconds <= 0 ? 0 : Bytes / 1e6 / Elapsed.TotalSeconds;
}

/// <summary>
/// Rebuilds stored models bit for bit: every file is decoded in order and hashed as it is written into a staging
/// folder of the restore's own inside the output folder; only once every file matches the hash recorded at ingest
/// (XXH3-128 by default, SHA-256 with <see cref="CheckSha256"/> or for manifests that predate XXH3-128) are the
/// files renamed into place. The output folder is locked for the whole restore, and nothing is ever written
/// through a symlink inside it.
/// </summary>
internal sealed class ModelRestorer(ModelStore store, WorkerPool pool)
{
    /// <summary>Reports bytes restored.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>
    /// Check each restored file's SHA-256 rather than its XXH3-128. Both were recorded at ingest and either
    /// proves the bytes; SHA-256 costs about a third of restore's CPU time, XXH3-128 about a fiftieth.
    /// </summary>
    public bool CheckSha256 { get; init; }

    /// <summary>
    /// Whether restored files are written around the page cache (<c>O_DIRECT</c>, where the file system allows it): less
    /// CPU, nothing evicted, but the restore waits for the device and the files are not left in memory. By default
    /// when the environment says <c>ZIPLLM_DIRECT_IO=1</c>.
    /// </summary>
    public bool DirectWrites { get; init; } = Environment.GetEnvironmentVariable("ZIPLLM_DIRECT_IO") == "1";

    /// <summary>
    /// Folders a restore with --force must never sweep away: an output folder that is one of them or holds one is
    /// refused (the CLI names the config's model folder). The store is always protected.
    /// </summary>
    public IReadOnlyList<string> ProtectedFolders { get; init; } = [];

    /// <summary>
    /// Restores <paramref name="modelId"/> into <paramref name="outputDir"/>. Afterwards the folder holds exactly
    /// the model's files and the folders they need; on failure or cancellation it is as it was, but for folders
    /// created on the way.
    /// </summary>
    /// <param name="modelId">The stored model.</param>
    /// <param name="outputDir">Folder to write; created when missing. It may be a symlink to a folder.</param>
    /// <param name="force">
    /// Write into a folder that is not empty: the model's files replace what is at their paths (a file, a folder or
    /// a symlink: the link itself, never its target), and every other entry in the folder is deleted.
    /// </param>
    /// <param name="cancellationToken">Stops the work; nothing is left of the files not yet in place.</param>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="StoreDamageException">A stored object or the manifest is damaged, or a file does not match its hash.</exception>
    /// <exception cref="ArgumentException">
    /// The output folder is in the store, or with <paramref name="force"/> is the file-system root, the user's home
    /// folder, or holds the store or one of the <see cref="ProtectedFolders"/>.
    /// </exception>
    /// <exception cref="IOException">
    /// The output folder is not empty and <paramref name="force"/> is not set, is not a folder, another restore is
    /// writing into it, or it cannot be written.
    /// </exception>
    public RestoreResult Restore(ModelId modelId, string outputDir, bool force, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        Manifest manifest = ReadManifest(modelId);
        using OutputFolder output = OutputFolder.Open(manifest, outputDir, force, store.Backend.LocalRoot, ProtectedFolders);
        // One read session for the whole restore: the files restored side by side share its bounded open objects.
        using (IObjectReadSession session = store.Backend.OpenReadSession())
        {
            RestoreIntoStaging(modelId, manifest, output, session, cancellationToken);
        }
        // Every file is verified: only now is anything of the user's replaced. Renames are quick, so a
        // cancellation from here on would only leave a folder half replaced.
        cancellationToken.ThrowIfCancellationRequested();
        output.PlaceFiles();
        return new RestoreResult(modelId, manifest.Files.Length, manifest.OriginalBytes, clock.Elapsed);
    }

    private Manifest ReadManifest(ModelId modelId)
    {
        try
        {
            return store.ReadManifest(modelId);
        }
        catch (InvalidDataException ex)
        {
            throw new StoreDamageException(modelId, null, null, $"the manifest is corrupt: {ex.Message.TrimEnd('.')}", ex);
        }
    }

    private void RestoreIntoStaging(ModelId modelId, Manifest manifest, OutputFolder output, IObjectReadSession session, CancellationToken cancellationToken)
    {
        // Files are restored side by side (largest first): each file's hash and writes are serial, so one file
        // at a time would leave the decoding workers waiting on them. The decoding runs in the pool's one budget
        // (at most pool.Threads busy in all); this loop's threads (our own) wait for it and hash and write in order.
        long done = 0;
        int[] bySize = [.. Enumerable.Range(0, manifest.Files.Length).OrderByDescending(i => manifest.Files[i].Size)];
        // One staging buffer for each file being written at once (at most pool.Threads), handed from file to file.
        var staging = new ConcurrentBag<StagingBuffer>();
        OwnedThreads.ForEach(bySize, pool.Threads, i =>
        {
            // Only direct writes gather into one: through the page cache the kernel copies anyway.
            StagingBuffer? buffer = !DirectWrites ? null : staging.TryTake(out StagingBuffer? free) ? free : new StagingBuffer(StagingLength);
            try
            {
                RestoreFile(modelId, manifest.Files[i], output.StagedPath(i), session, buffer, bytes =>
                    Progress?.Report(new ByteProgress(modelId.ToString(), Interlocked.Add(ref done, bytes), manifest.OriginalBytes)), cancellationToken);
            }
            finally
            {
                if (buffer is not null)
                {
                    staging.Add(buffer);
                }
            }
        }, cancellationToken);
    }

    /// <summary>
    /// Bytes a restored file is written in at once: one huge page. 8 MiB measured no faster and cost its memory (medians
    /// of 8-10 interleaved restores of the default family: base 0.27 CPU s and 112 MB peak RSS with 8 MiB, 0.20 s and
    /// 100 MB with 2 MiB; full finetune 0.41 s and 123 MB, 0.42 s and 111 MB).
    /// </summary>
    private const int StagingLength = 2 << 20;

    private void RestoreFile(ModelId modelId, StoredFile file, string staged, IObjectReadSession session, StagingBuffer? staging, Action<int> advance,
        CancellationToken cancellationToken)
    {
        // A new file, not a truncated one: .NET truncates a FileMode.Create file with ftruncate(0) even when it is
        // empty, and ext4 answers a truncate to 0 by writing the whole file back, synchronously, when it is
        // closed (auto_da_alloc), on the restoring thread. That was about 30% of a finetune's restore time here.
        // Written around the page cache when asked (DirectWrites): copying into it can be a third of restore's CPU.
        using SequentialFileWriter output = SequentialFileWriter.CreateNew(staged, staging, DirectWrites);
        using FileDigest digest = FileDigest.ForCheck(file, CheckSha256);
        // Said of the model's file, not of the staging file it is written to first (a full disk, a quota).
        IOException Named(IOException ex) => new($"Cannot write {file.Path} of {modelId}: {ex.Message}", ex);
        Produce(modelId, file, digest, session, chunk =>
        {
            try
            {
                output.Write(chunk);
            }
            catch (IOException ex)
            {
                throw Named(ex);
            }
            advance(chunk.Length);
        }, cancellationToken);
        try
        {
            output.Complete();
        }
        catch (IOException ex)
        {
            throw Named(ex);
        }
        Check(digest, modelId, file);
        // The bytes hashed are the bytes written, and nobody else writes into the staging folder (it is ours,
        // under the folder's lock); the length on disk is checked anyway, as it costs one call.
        if (output.LengthOnDisk != file.Size)
        {
            throw new IOException($"{staged}: {output.LengthOnDisk} bytes on disk where {file.Size} were written; the file was changed while restored.");
        }
    }

    private static void Check(FileDigest digest, ModelId modelId, StoredFile file)
    {
        if (digest.Mismatch(file) is { } problem)
        {
            throw new StoreDamageException(modelId, file.Path, null, $"the restored bytes do not match the hash recorded at ingest ({problem})");
        }
    }

    /// <summary>
    /// Decodes every file of <paramref name="modelId"/> without writing it and checks it against every hash
    /// recorded at ingest (SHA-256, and XXH3-128 where recorded); also checks that every object the model needs
    /// is there as a regular file. A damaged object or file is reported and the next file is checked.
    /// </summary>
    /// <returns>One line per problem, each naming the model (and the file and object where one is to blame); empty when the model is intact.</returns>
    /// <exception cref="IOException">The store cannot be read for a reason that is not damage (permissions, no file handles left).</exception>
    public IReadOnlyList<string> Verify(ModelId modelId, IProgress<ByteProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        Manifest manifest;
        try
        {
            manifest = ReadManifest(modelId);
        }
        catch (Exception ex) when (ex is StoreDamageException or NotSupportedException)
        {
            return [ex.Message];
        }
        long done = 0;
        using IObjectReadSession session = store.Backend.OpenReadSession();
        foreach (ContentHash hash in manifest.NeededObjects().OrderBy(h => h.Hex, StringComparer.Ordinal))
        {
            if (store.Objects.Contains(hash))
            {
                continue;
            }
            // Missing, or something else in its place: opening it says which.
            try
            {
                session.Open(hash);
                problems.Add($"{modelId}: object {hash} is missing.");
            }
            catch (StoreDamageException ex)
            {
                problems.Add($"{modelId}: {ex.Message}");
            }
        }
        problems.AddRange(CheckBaseChains(modelId, manifest));
        foreach (StoredFile file in manifest.Files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                using var digest = new FileDigest(sha256: true, xxh128: file.Xxh128 is not null);
                Produce(modelId, file, digest, session, chunk =>
                {
                    done += chunk.Length;
                    progress?.Report(new ByteProgress(modelId.ToString(), done, manifest.OriginalBytes));
                }, cancellationToken);
                Check(digest, modelId, file);
            }
            catch (StoreDamageException ex)
            {
                problems.Add(ex.Message);
            }
        }
        return problems;
    }

    /// <summary>
    /// Checks that each delta tensor's chain of bases, as its objects name them, is the one the manifest records:
    /// remove and gc keep exactly the recorded chain, so a difference would lose a base the tensor decodes from.
    /// An object that cannot be read is left to the decode that follows, which names it.
    /// </summary>
    private List<string> CheckBaseChains(ModelId modelId, Manifest manifest)
    {
        var problems = new List<string>();
        if (manifest.Format < 2)
        {
            return problems; // format 1 recorded the chains in its object list, read from the same headers
        }
        var chains = new Dictionary<ContentHash, ContentHash[]?>();
        foreach (StoredFile file in manifest.Files)
        {
            foreach (StoredTensor tensor in file.Tensors ?? [])
            {
                ContentHash start = tensor.Object;
                if (!chains.TryGetValue(start, out ContentHash[]? chain))
                {
                    chain = ReadChain(start);
                    chains[start] = chain;
                }
                if (chain is not null && !chain.AsSpan().SequenceEqual(tensor.Bases ?? []))
                {
                    problems.Add($"{modelId}: {file.Path}: tensor \"{tensor.Name}\" decodes against [{string.Join(", ", chain)}], " +
                        $"but the manifest records [{string.Join(", ", tensor.Bases ?? [])}]; the store is damaged.");
                }
            }
        }
        return problems;
    }

    /// <summary>The bases <paramref name="start"/> names, base first; null when an object of the chain cannot be read.</summary>
    private ContentHash[]? ReadChain(ContentHash start)
    {
        var chain = new List<ContentHash>();
        try
        {
            for (ContentHash? hash = store.Objects.ReadBaseReference(start); hash is { } current && chain.Count <= ObjectStore.MaxDeltaDepth;
                hash = store.Objects.ReadBaseReference(current))
            {
                chain.Add(current);
            }
        }
        catch (Exception ex) when (StoreDamageException.IsDamage(ex) || ex is StoreDamageException)
        {
            return null;
        }
        return [.. chain];
    }

    private const string HeaderMismatch = "the stored header does not match the stored tensors";

    /// <summary>
    /// Parses the stored safetensors header of <paramref name="file"/> for <paramref name="dataLength"/> bytes of tensor data,
    /// and checks that it names the file's stored tensors, in their order: restore and the library's file stream read by it.
    /// </summary>
    /// <exception cref="StoreDamageException">The header is malformed, or names other tensors.</exception>
    internal static SafetensorsHeader ParseStoredHeader(ModelId modelId, StoredFile file, byte[] headerBytes, long dataLength)
    {
        SafetensorsHeader header;
        try
        {
            header = SafetensorsHeader.Parse(headerBytes, dataLength, "the stored header");
        }
        catch (Exception ex) when (StoreDamageException.IsDamage(ex))
        {
            throw new StoreDamageException(modelId, file.Path, file.Object, ex.Message.TrimEnd('.'), ex);
        }
        StoredTensor[] tensors = file.Tensors ?? [];
        if (header.Tensors.Count != tensors.Length || header.Tensors.Where((t, i) => t.Name != tensors[i].Name).Any())
        {
            throw new StoreDamageException(modelId, file.Path, file.Object, HeaderMismatch);
        }
        return header;
    }

    /// <summary>Feeds the bytes of <paramref name="file"/>, in order, to <paramref name="digest"/> and then <paramref name="sink"/>.</summary>
    /// <exception cref="StoreDamageException">An object the file needs cannot be read back, or the stored header does not fit the tensors.</exception>
    private void Produce(ModelId modelId, StoredFile file, FileDigest digest, IObjectReadSession session, Action<ReadOnlySpan<byte>> sink,
        CancellationToken cancellationToken)
    {
        void Emit(ReadOnlySpan<byte> chunk)
        {
            digest.Append(chunk);
            sink(chunk);
        }

        using ObjectStore.ObjectReader reader = store.Objects.OpenReader(session);
        try
        {
            if (file.Kind == StoredFileKind.Blob)
            {
                TensorCodec.Decode(reader.OpenSource(file.Object), pool.Options.ChunkSize, pool, Emit, cancellationToken);
                return;
            }
            StoredTensor[] tensors = file.Tensors!;
            var sources = tensors.Select(t => reader.OpenSource(t.Object)).ToArray();
            for (int i = 0; i < tensors.Length; i++)
            {
                // An object that holds another tensor (swapped, or named wrong) is blamed itself, before the header is.
                if (tensors[i].ByteLength() is { } expected && sources[i].Length != expected)
                {
                    throw new StoreDamageException(modelId, file.Path, tensors[i].Object,
                        $"tensor \"{tensors[i].Name}\" is {sources[i].Length} bytes in its object, where its dtype and shape make {expected}");
                }
            }
            ContentHash headerObject = file.Object;
            byte[] headerBytes = TensorCodec.DecodeToArray(reader.OpenSource(headerObject), pool);
            SafetensorsHeader header = ParseStoredHeader(modelId, file, headerBytes, sources.Sum(s => s.Length));
            if (header.Tensors.Where((t, i) => t.Length != sources[i].Length).Any())
            {
                throw new StoreDamageException(modelId, file.Path, headerObject, HeaderMismatch);
            }
            Span<byte> prefix = stackalloc byte[SafetensorsFormat.LengthPrefixSize];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)headerBytes.Length);
            Emit(prefix);
            Emit(headerBytes);
            TensorCodec.Decode(sources, pool.Options.ChunkSize, pool, Emit, cancellationToken);
        }
        catch (StoreDamageException ex)
        {
            throw ex.InFile(modelId, file.Path);
        }
        catch (InvalidDataException ex)
        {
            // The manifest names something that is not an object.
            throw new StoreDamageException(modelId, file.Path, null, ex.Message.TrimEnd('.'), ex);
        }
    }
}
