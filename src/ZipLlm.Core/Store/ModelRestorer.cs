using System.Buffers.Binary;
using System.Diagnostics;
using ZipLlm.Codecs;
using ZipLlm.IO;
using ZipLlm.Safetensors;

namespace ZipLlm.Store;

/// <summary>What restoring a model did.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Files">Files written.</param>
/// <param name="Bytes">Bytes written.</param>
/// <param name="Elapsed">Wall time, verification included.</param>
public sealed record RestoreResult(string ModelId, int Files, long Bytes, TimeSpan Elapsed)
{
    /// <summary>Output throughput in MB/s.</summary>
    public double MegabytesPerSecond => Elapsed.TotalSeconds <= 0 ? 0 : Bytes / 1e6 / Elapsed.TotalSeconds;
}

/// <summary>
/// Rebuilds stored models bit for bit: every file is decoded in order, hashed as it is written under a
/// temporary name, and renamed into place only when its hash matches the one recorded at ingest: XXH3-128
/// by default, SHA-256 with <see cref="CheckSha256"/> (or for manifests that predate XXH3-128).
/// </summary>
public sealed class ModelRestorer(ModelStore store, WorkerPool pool)
{
    /// <summary>Suffix of files being restored; they are renamed only once verified.</summary>
    public const string PartialSuffix = ".zipllm-partial";

    /// <summary>Reports bytes restored.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>
    /// Check each restored file's SHA-256 rather than its XXH3-128. Both were recorded at ingest and either
    /// proves the bytes; SHA-256 costs about a third of restore's CPU time, XXH3-128 about a fiftieth.
    /// </summary>
    public bool CheckSha256 { get; init; }

    /// <summary>Restores <paramref name="modelId"/> into <paramref name="outputDir"/>.</summary>
    /// <param name="modelId">The stored model.</param>
    /// <param name="outputDir">Folder to write; created when missing.</param>
    /// <param name="force">Write into a folder that is not empty (files of the model are replaced).</param>
    /// <param name="cancellationToken">Stops the work; files not yet verified are removed.</param>
    /// <exception cref="KeyNotFoundException">The model is not stored.</exception>
    /// <exception cref="IOException">The output folder is not empty and <paramref name="force"/> is not set.</exception>
    /// <exception cref="InvalidDataException">A stored object is corrupt, or a restored file does not match its hash.</exception>
    /// <exception cref="FileNotFoundException">A stored object is missing.</exception>
    public RestoreResult Restore(string modelId, string outputDir, bool force, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        Manifest manifest = store.ReadManifest(modelId);
        if (Directory.Exists(outputDir) && Directory.EnumerateFileSystemEntries(outputDir).Any() && !force)
        {
            throw new IOException($"Output folder {outputDir} is not empty; use --force to write into it.");
        }
        Directory.CreateDirectory(outputDir);
        string root = Path.GetFullPath(outputDir);
        foreach (StoredFile file in manifest.Files)
        {
            string target = Path.GetFullPath(Path.Combine(root, file.Path));
            if (!target.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{modelId}: manifest path \"{file.Path}\" leaves the output folder.");
            }
        }

        // Files are restored side by side (largest first): each file's hash and writes are serial, so one file
        // at a time would leave the decoding workers waiting on them. Chunks still go through the one pool.
        long done = 0;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = pool.Threads, CancellationToken = cancellationToken };
        try
        {
            Parallel.ForEach(manifest.Files.OrderByDescending(f => f.Size), parallel, file =>
                RestoreFile(modelId, file, Path.GetFullPath(Path.Combine(root, file.Path)), bytes =>
                    Progress?.Report(new ByteProgress(modelId, Interlocked.Add(ref done, bytes), manifest.OriginalBytes)), cancellationToken));
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
        {
            // Keep the library's exception contract: the first failure, as it was thrown.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
        return new RestoreResult(modelId, manifest.Files.Length, manifest.OriginalBytes, clock.Elapsed);
    }

    private void RestoreFile(string modelId, StoredFile file, string target, Action<int> advance, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        string partial = target + PartialSuffix;
        // A new file, not a truncated one: .NET truncates a FileMode.Create file with ftruncate(0) even when it is
        // empty, and ext4 answers a truncate to 0 by writing the whole file back, synchronously, when it is
        // closed (auto_da_alloc), on the restoring thread. That was about 30% of a finetune's restore time here.
        AtomicFile.TryDelete(partial);
        try
        {
            using (var output = new FileStream(partial, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                using FileDigest digest = FileDigest.ForCheck(file, CheckSha256);
                Produce(modelId, file, digest, chunk =>
                {
                    output.Write(chunk);
                    advance(chunk.Length);
                }, cancellationToken);
                digest.Check(modelId, file);
            }
            File.Move(partial, target, overwrite: true);
        }
        catch
        {
            AtomicFile.TryDelete(partial);
            throw;
        }
    }

    /// <summary>
    /// Decodes every file of <paramref name="modelId"/> without writing it and checks it against every hash
    /// recorded at ingest (SHA-256, and XXH3-128 where recorded); also checks that every object the model needs exists.
    /// </summary>
    /// <returns>One line per problem; empty when the model is intact.</returns>
    public IReadOnlyList<string> Verify(string modelId, IProgress<ByteProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        Manifest manifest;
        try
        {
            manifest = store.ReadManifest(modelId);
        }
        catch (Exception ex) when (ex is InvalidDataException or NotSupportedException or IOException)
        {
            return [ex.Message];
        }
        foreach (ContentHash hash in manifest.NeededObjects().OrderBy(h => h.Hex, StringComparer.Ordinal))
        {
            if (!store.Objects.Contains(hash))
            {
                problems.Add($"{modelId}: object {hash} is missing.");
            }
        }
        long done = 0;
        foreach (StoredFile file in manifest.Files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                using var digest = new FileDigest(sha256: true, xxh128: file.Xxh128 is not null);
                Produce(modelId, file, digest, chunk =>
                {
                    done += chunk.Length;
                    progress?.Report(new ByteProgress(modelId, done, manifest.OriginalBytes));
                }, cancellationToken);
                digest.Check(modelId, file);
            }
            catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or FileNotFoundException or NotSupportedException)
            {
                problems.Add(ex.Message);
            }
        }
        return problems;
    }

    /// <summary>Feeds the bytes of <paramref name="file"/>, in order, to <paramref name="digest"/> and then <paramref name="sink"/>.</summary>
    private void Produce(string modelId, StoredFile file, FileDigest digest, Action<ReadOnlySpan<byte>> sink, CancellationToken cancellationToken)
    {
        void Emit(ReadOnlySpan<byte> chunk)
        {
            digest.Append(chunk);
            sink(chunk);
        }

        using ObjectStore.ObjectReader reader = store.Objects.OpenReader();
        try
        {
            if (file.Kind == StoredFileKind.Blob)
            {
                TensorCodec.Decode(reader.Open(ContentHash.Parse(file.Object)), pool.Options.ChunkSize, pool, Emit, cancellationToken);
            }
            else
            {
                StoredTensor[] tensors = file.Tensors!;
                var sources = tensors.Select(t => reader.Open(ContentHash.Parse(t.Object))).ToArray();
                byte[] headerBytes = TensorCodec.DecodeToArray(reader.Open(ContentHash.Parse(file.Object)), pool);
                long dataLength = sources.Sum(s => s.Length);
                // The stored header must describe exactly the stored tensors, in the same order.
                SafetensorsHeader header = SafetensorsHeader.Parse(headerBytes, dataLength, $"{modelId}: {file.Path}");
                if (header.Tensors.Count != tensors.Length || header.Tensors.Where((t, i) => t.Name != tensors[i].Name || t.Length != sources[i].Length).Any())
                {
                    throw new InvalidDataException($"{modelId}: {file.Path}: stored header does not match the stored tensors.");
                }
                Span<byte> prefix = stackalloc byte[SafetensorsFormat.LengthPrefixSize];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)headerBytes.Length);
                Emit(prefix);
                Emit(headerBytes);
                TensorCodec.Decode(sources, pool.Options.ChunkSize, pool, Emit, cancellationToken);
            }
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{modelId}: {file.Path}: {ex.Message}", ex);
        }
        catch (FileNotFoundException ex)
        {
            throw new FileNotFoundException($"{modelId}: {file.Path}: {ex.Message}", ex.FileName, ex);
        }
    }
}
