using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Win32.SafeHandles;
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
/// Rebuilds stored models bit for bit: every file is decoded in order and hashed as it is written into a staging
/// folder of the restore's own inside the output folder; only once every file matches the hash recorded at ingest
/// (XXH3-128 by default, SHA-256 with <see cref="CheckSha256"/> or for manifests that predate XXH3-128) are the
/// files renamed into place. The output folder is locked for the whole restore, and nothing is ever written
/// through a symlink inside it.
/// </summary>
public sealed class ModelRestorer(ModelStore store, WorkerPool pool)
{
    /// <summary>
    /// Start of the name of the folder a restore stages its files in, inside the output folder; the rest of the
    /// name (process id and a GUID) is chosen so that it is not a top-level name of the model.
    /// </summary>
    public const string StagingPrefix = ".zipllm-staging-";

    /// <summary>Reports bytes restored.</summary>
    public IProgress<ByteProgress>? Progress { get; init; }

    /// <summary>
    /// Check each restored file's SHA-256 rather than its XXH3-128. Both were recorded at ingest and either
    /// proves the bytes; SHA-256 costs about a third of restore's CPU time, XXH3-128 about a fiftieth.
    /// </summary>
    public bool CheckSha256 { get; init; }

    /// <summary>
    /// Folders a restore with --force must never sweep away: an output folder that is one of them or holds one is
    /// refused (the CLI names the config's model folder). The store is always protected.
    /// </summary>
    public IReadOnlyList<string> ProtectedFolders { get; init; } = [];

    /// <summary>Object files kept open while idle; tests lower it to see that the bound holds.</summary>
    internal int MaxOpenObjects { get; init; } = ObjectHandleCache.DefaultCapacity;

    /// <summary>Most object files the last restore or verify had open at once.</summary>
    internal int PeakOpenObjects { get; private set; }

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
    public RestoreResult Restore(string modelId, string outputDir, bool force, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        Manifest manifest = ReadManifest(modelId);
        OutputPlan plan = OutputPlan.Create(modelId, manifest);
        string root = PrepareOutput(outputDir, force);
        using SafeFileHandle outputLock = Posix.TryLockDirectory(root)
            ?? throw new IOException($"{root}: another zipllm restore is writing into this folder; try again when it is done.");
        RemoveStaleStagingFolders(root, plan);
        if (!force && Directory.EnumerateFileSystemEntries(root).Any())
        {
            throw new IOException($"Output folder {root} is not empty; use --force to replace its content with the model.");
        }

        string staging = CreateStagingFolder(root, plan);
        try
        {
            using (var handles = new ObjectHandleCache(store.Objects, MaxOpenObjects))
            {
                RestoreIntoStaging(modelId, manifest, staging, handles, cancellationToken);
                PeakOpenObjects = handles.PeakOpenCount;
            }
            // Every file is verified: only now is anything of the user's replaced. Renames are quick, so a
            // cancellation from here on would only leave a folder half replaced.
            cancellationToken.ThrowIfCancellationRequested();
            for (int i = 0; i < manifest.Files.Length; i++)
            {
                PlaceFile(root, manifest.Files[i].Path, Path.Combine(staging, StagedName(i)), force);
            }
            if (force)
            {
                RemoveOthers(root, "", plan, Path.GetFileName(staging));
            }
        }
        finally
        {
            TryDeleteTree(staging);
        }
        return new RestoreResult(modelId, manifest.Files.Length, manifest.OriginalBytes, clock.Elapsed);
    }

    private Manifest ReadManifest(string modelId)
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

    private void RestoreIntoStaging(string modelId, Manifest manifest, string staging, ObjectHandleCache handles, CancellationToken cancellationToken)
    {
        // Files are restored side by side (largest first): each file's hash and writes are serial, so one file
        // at a time would leave the decoding workers waiting on them. Chunks still go through the one pool.
        long done = 0;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = pool.Threads, CancellationToken = cancellationToken };
        try
        {
            Parallel.ForEach(Enumerable.Range(0, manifest.Files.Length).OrderByDescending(i => manifest.Files[i].Size), parallel, i =>
                RestoreFile(modelId, manifest.Files[i], Path.Combine(staging, StagedName(i)), handles, bytes =>
                    Progress?.Report(new ByteProgress(modelId, Interlocked.Add(ref done, bytes), manifest.OriginalBytes)), cancellationToken));
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
        {
            // Keep the library's exception contract: the first failure, as it was thrown.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
        }
    }

    // Staged files are named by their index in the manifest: no folders to create, and no name of the model's.
    private static string StagedName(int index) => index.ToString(CultureInfo.InvariantCulture);

    private void RestoreFile(string modelId, StoredFile file, string staged, ObjectHandleCache handles, Action<int> advance, CancellationToken cancellationToken)
    {
        // A new file, not a truncated one: .NET truncates a FileMode.Create file with ftruncate(0) even when it is
        // empty, and ext4 answers a truncate to 0 by writing the whole file back, synchronously, when it is
        // closed (auto_da_alloc), on the restoring thread. That was about 30% of a finetune's restore time here.
        using var output = new FileStream(staged, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0);
        using FileDigest digest = FileDigest.ForCheck(file, CheckSha256);
        Produce(modelId, file, digest, handles, chunk =>
        {
            output.Write(chunk);
            advance(chunk.Length);
        }, cancellationToken);
        Check(digest, modelId, file);
        // The bytes hashed are the bytes written, and nobody else writes into the staging folder (it is ours,
        // under the folder's lock); the length on disk is checked anyway, as it costs one call.
        if (output.Length != file.Size)
        {
            throw new IOException($"{staged}: {output.Length} bytes on disk where {file.Size} were written; the file was changed while restored.");
        }
    }

    private static void Check(FileDigest digest, string modelId, StoredFile file)
    {
        if (digest.Mismatch(file) is { } problem)
        {
            throw new StoreDamageException(modelId, file.Path, null, $"the restored bytes do not match the hash recorded at ingest ({problem})");
        }
    }

    /// <summary>The real path of the output folder, created when missing once every refusal is made.</summary>
    private string PrepareOutput(string outputDir, bool force)
    {
        // The folder the user named may be a symlink, or lie under one: resolved once, here; below it no link is followed.
        string root = ResolveAsFarAsExists(Path.GetFullPath(outputDir));
        EntryKind kind = Posix.Lstat(root).Kind;
        if (kind is not (EntryKind.Directory or EntryKind.Missing))
        {
            throw new IOException($"Output folder {root} is a {Posix.Describe(kind)}, not a folder.");
        }
        string storeRoot = Posix.RealPath(store.Layout.Root);
        if (IsSameOrInside(root, storeRoot))
        {
            throw new ArgumentException($"Output folder {root} is inside the store {storeRoot}; restore into a folder outside it.");
        }
        if (force)
        {
            if (IsProtectedFolder(root))
            {
                throw new ArgumentException($"Refusing --force into {root}: --force deletes every file in the output folder that is not the model's.");
            }
            if (IsSameOrInside(storeRoot, root))
            {
                throw new ArgumentException($"Refusing --force into {root}: it holds the store {storeRoot}, which --force would delete.");
            }
            foreach (string folder in ProtectedFolders)
            {
                if (Directory.Exists(folder) && Posix.RealPath(folder) is var real && IsSameOrInside(real, root))
                {
                    throw new ArgumentException($"Refusing --force into {root}: it holds {real}, which --force would delete.");
                }
            }
        }
        if (kind == EntryKind.Missing)
        {
            Directory.CreateDirectory(root);
        }
        return root;
    }

    /// <summary>The real path of the nearest existing ancestor of <paramref name="path"/>, with the missing rest appended.</summary>
    private static string ResolveAsFarAsExists(string path)
    {
        var missing = new Stack<string>();
        string current = Path.TrimEndingDirectorySeparator(path);
        while (Posix.Lstat(current).Kind == EntryKind.Missing && Path.GetDirectoryName(current) is { } parent)
        {
            missing.Push(Path.GetFileName(current));
            current = parent;
        }
        string resolved = Posix.Lstat(current).Kind == EntryKind.Missing ? current : Posix.RealPath(current);
        while (missing.TryPop(out string? name))
        {
            resolved = Path.Combine(resolved, name);
        }
        return resolved;
    }

    /// <summary>Whether <paramref name="root"/> (a real path) is a folder --force must never sweep: the file-system root or the user's home.</summary>
    internal static bool IsProtectedFolder(string root)
    {
        if (root == Path.GetPathRoot(root))
        {
            return true;
        }
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return home.Length > 0 && Directory.Exists(home) && root == Posix.RealPath(home);
    }

    private static bool IsSameOrInside(string path, string folder) =>
        path == folder || path.StartsWith(Path.TrimEndingDirectorySeparator(folder) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string CreateStagingFolder(string root, OutputPlan plan)
    {
        while (true)
        {
            string name = $"{StagingPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}";
            string path = Path.Combine(root, name);
            if (!plan.TopLevelNames.Contains(name) && Posix.Lstat(path).Kind == EntryKind.Missing)
            {
                Directory.CreateDirectory(path);
                return path;
            }
        }
    }

    /// <summary>
    /// Deletes staging folders that restores killed outright (SIGKILL, power loss) left behind: under the folder's
    /// lock no other restore is running, so every one is stale. Only names of the exact form ours take, and none
    /// the model itself holds, are touched.
    /// </summary>
    private static void RemoveStaleStagingFolders(string root, OutputPlan plan)
    {
        foreach (string entry in Directory.EnumerateDirectories(root, StagingPrefix + "*").ToList())
        {
            string name = Path.GetFileName(entry);
            if (IsStagingName(name) && !plan.TopLevelNames.Contains(name) && Posix.Lstat(entry).Kind == EntryKind.Directory)
            {
                DeleteTree(entry);
            }
        }
    }

    // ".zipllm-staging-<pid>-<32 hex digits>".
    private static bool IsStagingName(string name)
    {
        string rest = name[StagingPrefix.Length..];
        int dash = rest.IndexOf('-');
        return dash > 0 && rest[..dash].All(char.IsAsciiDigit) && ContentHash.IsLowerHex(rest[(dash + 1)..], 32);
    }

    /// <summary>Renames a verified file into place, making real folders of what stands where its folders go.</summary>
    private static void PlaceFile(string root, string relativePath, string staged, bool force)
    {
        string[] parts = relativePath.Split('/');
        string folder = root;
        foreach (string part in parts.AsSpan(0, parts.Length - 1))
        {
            folder = Path.Combine(folder, part);
            EntryKind kind = Posix.Lstat(folder).Kind;
            if (kind == EntryKind.Directory)
            {
                continue;
            }
            if (kind != EntryKind.Missing)
            {
                // A symlink here would send the model's files wherever it points: the link goes, its target stays.
                RemoveEntry(folder, kind, force);
            }
            Directory.CreateDirectory(folder);
        }
        string target = Path.Combine(root, relativePath);
        EntryKind existing = Posix.Lstat(target).Kind;
        if (existing == EntryKind.Directory)
        {
            RemoveEntry(target, existing, force);
        }
        else if (existing != EntryKind.Missing && !force)
        {
            throw new IOException($"{target} appeared while the model was restored; it is left as it is.");
        }
        // rename(2) replaces a file, a FIFO or a symlink itself; it never writes through a link.
        File.Move(staged, target, overwrite: true);
    }

    private static void RemoveEntry(string path, EntryKind kind, bool force)
    {
        if (!force)
        {
            // The folder was empty when the restore began: something else is writing into it.
            throw new IOException($"{path} appeared while the model was restored; it is left as it is.");
        }
        if (kind == EntryKind.Directory)
        {
            DeleteTree(path);
        }
        else
        {
            File.Delete(path);
        }
    }

    /// <summary>Deletes every entry under <paramref name="folder"/> that is not a file of the model or a folder one needs.</summary>
    private static void RemoveOthers(string folder, string relative, OutputPlan plan, string stagingName)
    {
        foreach (string entry in Directory.EnumerateFileSystemEntries(folder).ToList())
        {
            string name = Path.GetFileName(entry);
            if (relative.Length == 0 && name == stagingName)
            {
                continue;
            }
            string path = relative.Length == 0 ? name : relative + "/" + name;
            EntryKind kind = Posix.Lstat(entry).Kind;
            if (kind == EntryKind.File && plan.Files.Contains(path))
            {
                continue;
            }
            if (kind == EntryKind.Directory && plan.Folders.Contains(path))
            {
                RemoveOthers(entry, path, plan, stagingName);
                continue;
            }
            RemoveEntry(entry, kind, force: true);
        }
    }

    /// <summary>Deletes a folder and everything in it; a symlink inside is deleted itself, its target never touched.</summary>
    private static void DeleteTree(string folder)
    {
        foreach (string entry in Directory.EnumerateFileSystemEntries(folder).ToList())
        {
            if (Posix.Lstat(entry).Kind == EntryKind.Directory)
            {
                DeleteTree(entry);
            }
            else
            {
                File.Delete(entry);
            }
        }
        Directory.Delete(folder);
    }

    private static void TryDeleteTree(string folder)
    {
        try
        {
            if (Posix.Lstat(folder).Kind == EntryKind.Directory)
            {
                DeleteTree(folder);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: the failure that brought us here matters more; a later --force restore sweeps it.
        }
    }

    /// <summary>The model's files and the folders they need, as relative paths with '/' separators, checked.</summary>
    private sealed class OutputPlan
    {
        private OutputPlan(HashSet<string> files, HashSet<string> folders, HashSet<string> topLevelNames)
        {
            Files = files;
            Folders = folders;
            TopLevelNames = topLevelNames;
        }

        public HashSet<string> Files { get; }

        public HashSet<string> Folders { get; }

        public HashSet<string> TopLevelNames { get; }

        /// <exception cref="StoreDamageException">A path is empty, absolute, leaves the folder, repeats, or is both a file and a folder.</exception>
        public static OutputPlan Create(string modelId, Manifest manifest)
        {
            var files = new HashSet<string>(StringComparer.Ordinal);
            var folders = new HashSet<string>(StringComparer.Ordinal);
            var top = new HashSet<string>(StringComparer.Ordinal);
            foreach (StoredFile file in manifest.Files)
            {
                string[] parts = file.Path.Split('/');
                if (parts.Any(p => p.Length == 0 || p is "." or ".." || p.Contains('\0')))
                {
                    throw new StoreDamageException(modelId, file.Path, null, "the manifest path is not a relative path inside the model's folder");
                }
                if (!files.Add(file.Path))
                {
                    throw new StoreDamageException(modelId, file.Path, null, "the manifest lists the path twice");
                }
                top.Add(parts[0]);
                for (int i = 1; i < parts.Length; i++)
                {
                    folders.Add(string.Join('/', parts, 0, i));
                }
            }
            if (files.FirstOrDefault(folders.Contains) is { } both)
            {
                throw new StoreDamageException(modelId, both, null, "the manifest lists the path both as a file and as a folder");
            }
            return new OutputPlan(files, folders, top);
        }
    }

    /// <summary>
    /// Decodes every file of <paramref name="modelId"/> without writing it and checks it against every hash
    /// recorded at ingest (SHA-256, and XXH3-128 where recorded); also checks that every object the model needs
    /// is there as a regular file. A damaged object or file is reported and the next file is checked.
    /// </summary>
    /// <returns>One line per problem, each naming the model (and the file and object where one is to blame); empty when the model is intact.</returns>
    /// <exception cref="IOException">The store cannot be read for a reason that is not damage (permissions, no file handles left).</exception>
    public IReadOnlyList<string> Verify(string modelId, IProgress<ByteProgress>? progress = null, CancellationToken cancellationToken = default)
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
        foreach (ContentHash hash in manifest.NeededObjects().OrderBy(h => h.Hex, StringComparer.Ordinal))
        {
            EntryKind kind = Posix.Lstat(store.Layout.ObjectPath(hash)).Kind;
            if (kind != EntryKind.File)
            {
                problems.Add(kind == EntryKind.Missing
                    ? $"{modelId}: object {hash} is missing."
                    : $"{modelId}: object {hash} is a {Posix.Describe(kind)}, not a regular file; the store is damaged.");
            }
        }
        long done = 0;
        using var handles = new ObjectHandleCache(store.Objects, MaxOpenObjects);
        foreach (StoredFile file in manifest.Files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                using var digest = new FileDigest(sha256: true, xxh128: file.Xxh128 is not null);
                Produce(modelId, file, digest, handles, chunk =>
                {
                    done += chunk.Length;
                    progress?.Report(new ByteProgress(modelId, done, manifest.OriginalBytes));
                }, cancellationToken);
                Check(digest, modelId, file);
            }
            catch (StoreDamageException ex)
            {
                problems.Add(ex.Message);
            }
        }
        PeakOpenObjects = handles.PeakOpenCount;
        return problems;
    }

    /// <summary>Feeds the bytes of <paramref name="file"/>, in order, to <paramref name="digest"/> and then <paramref name="sink"/>.</summary>
    /// <exception cref="StoreDamageException">An object the file needs cannot be read back, or the stored header does not fit the tensors.</exception>
    private void Produce(string modelId, StoredFile file, FileDigest digest, ObjectHandleCache handles, Action<ReadOnlySpan<byte>> sink,
        CancellationToken cancellationToken)
    {
        void Emit(ReadOnlySpan<byte> chunk)
        {
            digest.Append(chunk);
            sink(chunk);
        }

        using ObjectStore.ObjectReader reader = store.Objects.OpenReader(handles);
        try
        {
            if (file.Kind == StoredFileKind.Blob)
            {
                TensorCodec.Decode(reader.OpenSource(ContentHash.Parse(file.Object)), pool.Options.ChunkSize, pool, Emit, cancellationToken);
                return;
            }
            StoredTensor[] tensors = file.Tensors!;
            var sources = tensors.Select(t => reader.OpenSource(ContentHash.Parse(t.Object))).ToArray();
            ContentHash headerObject = ContentHash.Parse(file.Object);
            byte[] headerBytes = TensorCodec.DecodeToArray(reader.OpenSource(headerObject), pool);
            long dataLength = sources.Sum(s => s.Length);
            // The stored header must describe exactly the stored tensors, in the same order.
            SafetensorsHeader header;
            try
            {
                header = SafetensorsHeader.Parse(headerBytes, dataLength, "the stored header");
            }
            catch (Exception ex) when (StoreDamageException.IsDamage(ex))
            {
                throw new StoreDamageException(modelId, file.Path, headerObject, ex.Message.TrimEnd('.'), ex);
            }
            if (header.Tensors.Count != tensors.Length || header.Tensors.Where((t, i) => t.Name != tensors[i].Name || t.Length != sources[i].Length).Any())
            {
                throw new StoreDamageException(modelId, file.Path, headerObject, "the stored header does not match the stored tensors");
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
