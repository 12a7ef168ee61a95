using ZipLlm.Domain;
using ZipLlm.IO;

namespace ZipLlm.Config;

/// <summary>One revision of a model in a Hugging Face cache, resolved and checked.</summary>
/// <param name="RepoFolder">The model's cache folder, <c>CACHE/models--ORG--NAME</c>.</param>
/// <param name="Folder">The snapshot to read: <c>RepoFolder/snapshots/COMMIT</c>.</param>
/// <param name="Commit">The commit the snapshot holds (its folder name).</param>
internal sealed record HubCacheSnapshot(string RepoFolder, string Folder, string Commit);

/// <summary>
/// The cache layout huggingface_hub (and transformers, hf-hub, llama.cpp ...) write, read in place:
/// <code>
/// CACHE/                                  HF_HUB_CACHE, by default $HF_HOME/hub, by default ~/.cache/huggingface/hub
///   models--ORG--NAME/
///     refs/main                           the commit a branch or tag points at (refs/pr/1 for a pull request)
///     snapshots/COMMIT/config.json        a relative symlink: ../../blobs/ETAG
///     snapshots/COMMIT/sub/x.json         nested paths keep their folders (../../../blobs/ETAG)
///     blobs/ETAG                          the bytes (SHA-256 for LFS files, the git blob id for others)
///     .no_exist/COMMIT/NAME               empty markers of files the hub does not have (never read)
/// </code>
/// A snapshot's entries may be symlinks into the model's own cache folder (followed, for reading only) or plain
/// files (caches written where symlinks are not allowed). A link that leads out of <c>models--ORG--NAME</c>, a
/// dangling link (its blob missing), a missing ref or snapshot is refused as invalid input, naming the path.
/// </summary>
internal static class HubCache
{
    /// <summary>Start of a model's folder name in the cache.</summary>
    public const string ModelPrefix = "models--";

    /// <summary>Separator of org and name in a cache folder name (and of <see cref="ModelPrefix"/>).</summary>
    public const string Separator = "--";

    /// <summary>Folder of refs (branch and tag names to commits).</summary>
    public const string RefsFolder = "refs";

    /// <summary>Folder of snapshots (one per commit).</summary>
    public const string SnapshotsFolder = "snapshots";

    /// <summary>Folder of blobs (the files' bytes, by ETag).</summary>
    public const string BlobsFolder = "blobs";

    /// <summary>A ref file holds a commit id and a newline at most; anything longer is not one.</summary>
    public const int MaxRefFileSize = 1024;

    /// <summary>Deepest nesting of folders followed in a snapshot.</summary>
    public const int MaxDepth = 64;

    /// <summary>The cache folder name of <paramref name="modelId"/>: <c>models--ORG--NAME</c>.</summary>
    public static string FolderName(ModelId modelId) => ModelPrefix + modelId.Org + Separator + modelId.Name;

    /// <summary>Whether <paramref name="modelDir"/> is laid out as a Hugging Face cache: it holds a <c>models--*</c> folder.</summary>
    public static bool IsCache(string modelDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        try
        {
            return Directory.Exists(modelDir) && Directory.EnumerateDirectories(modelDir, ModelPrefix + "*").Any();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Whether the cache at <paramref name="modelDir"/> holds a folder for <paramref name="modelId"/>.</summary>
    public static bool Holds(string modelDir, ModelId modelId) => Directory.Exists(Path.Combine(modelDir, FolderName(modelId)));

    /// <summary>
    /// The snapshot of <paramref name="modelId"/> at <paramref name="revision"/> (<see cref="HubRevision.Default"/> when
    /// null): the commit <c>refs/REVISION</c> names, or the revision itself when it is a commit the cache has a snapshot of.
    /// Every entry of the snapshot is checked before it is returned (see the class remarks).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The cache has no folder for the model.</exception>
    /// <exception cref="InvalidDataException">
    /// The ref is missing or does not hold a commit id, the snapshot is missing, or an entry of it is a dangling link,
    /// a link out of the model's cache folder, or not a file or folder.
    /// </exception>
    /// <exception cref="ArgumentException"><paramref name="revision"/> is not a valid revision.</exception>
    public static HubCacheSnapshot Resolve(string modelDir, ModelId modelId, string? revision = null) => Resolve(modelDir, modelId, revision, check: true);

    private static HubCacheSnapshot Resolve(string modelDir, ModelId modelId, string? revision, bool check)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        revision ??= HubRevision.Default;
        if (HubRevision.Validate(revision) is { } problem)
        {
            throw new ArgumentException($"{modelId}: {problem}.", nameof(revision));
        }
        string repo = Path.Combine(Path.GetFullPath(modelDir), FolderName(modelId));
        if (!Directory.Exists(repo))
        {
            throw new DirectoryNotFoundException($"{modelId}: the Hugging Face cache {modelDir} has no {FolderName(modelId)} folder.");
        }
        string refPath = Path.Combine(repo, RefsFolder, revision);
        string commit;
        if (File.Exists(refPath))
        {
            commit = ReadRef(modelId, refPath);
        }
        else if (HubRevision.IsCommit(revision) && Directory.Exists(Path.Combine(repo, SnapshotsFolder, revision.ToLowerInvariant())))
        {
            commit = revision.ToLowerInvariant();
        }
        else
        {
            throw new InvalidDataException(
                $"{modelId}: {refPath} does not exist: the cache holds no revision \"{revision}\" of the model ({Available(repo)}).");
        }
        string snapshot = Path.Combine(repo, SnapshotsFolder, commit);
        if (!Directory.Exists(snapshot))
        {
            throw new InvalidDataException($"{modelId}: {refPath} names commit {commit}, but {snapshot} does not exist.");
        }
        if (check)
        {
            CheckSnapshot(modelId, repo, snapshot);
        }
        return new HubCacheSnapshot(repo, snapshot, commit);
    }

    /// <summary>The snapshot folder of <paramref name="modelId"/> at <paramref name="revision"/>, unchecked; null when the cache has none.</summary>
    public static string? Locate(string modelDir, ModelId modelId, string? revision = null)
    {
        try
        {
            return Holds(modelDir, modelId) ? Resolve(modelDir, modelId, revision, check: false).Folder : null;
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The commit a ref file holds.</summary>
    private static string ReadRef(ModelId modelId, string refPath)
    {
        byte[] bytes;
        try
        {
            bytes = InputFile.ReadAll(refPath, MaxRefFileSize, "ref");
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{modelId}: {ex.Message} A ref holds one commit id.", ex);
        }
        string commit = System.Text.Encoding.UTF8.GetString(bytes).Trim();
        if (!HubRevision.IsCommit(commit))
        {
            throw new InvalidDataException($"{modelId}: {refPath} does not hold a commit id ({HubRevision.CommitLength} hex digits).");
        }
        return commit.ToLowerInvariant();
    }

    /// <summary>The refs and snapshots a model's cache folder has, for a message.</summary>
    private static string Available(string repo)
    {
        string refs = Path.Combine(repo, RefsFolder), snapshots = Path.Combine(repo, SnapshotsFolder);
        var names = new List<string>();
        if (Directory.Exists(refs))
        {
            names.AddRange(Directory.EnumerateFiles(refs, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(refs, f).Replace('\\', '/')).Order(StringComparer.Ordinal));
        }
        if (Directory.Exists(snapshots))
        {
            names.AddRange(Directory.EnumerateDirectories(snapshots).Select(Path.GetFileName).Order(StringComparer.Ordinal)!);
        }
        return names.Count == 0 ? "it has no refs and no snapshots" : "it has " + string.Join(", ", names);
    }

    /// <summary>Checks every entry of <paramref name="snapshot"/>: files, folders, and links that resolve to one inside the model's cache folder.</summary>
    private static void CheckSnapshot(ModelId modelId, string repo, string snapshot)
    {
        string root = Posix.RealPath(repo);
        string inside = Path.EndsInDirectorySeparator(root) ? root : root + Path.DirectorySeparatorChar;
        EntryStatus top = Posix.Stat(snapshot);
        var ancestors = new HashSet<(ulong, ulong)> { (top.Device, top.Inode) };
        Walk(modelId, root, inside, snapshot, ancestors, 0);
    }

    private static void Walk(ModelId modelId, string root, string inside, string directory, HashSet<(ulong, ulong)> ancestors, int depth)
    {
        if (depth >= MaxDepth)
        {
            throw new InvalidDataException($"{modelId}: {directory} is nested more than {MaxDepth} folders deep.");
        }
        foreach (string full in Directory.EnumerateFileSystemEntries(directory).Order(StringComparer.Ordinal))
        {
            EntryStatus entry = Posix.Lstat(full);
            if (entry.Kind == EntryKind.SymbolicLink)
            {
                string target = new FileInfo(full).LinkTarget ?? "?";
                entry = Posix.Stat(full);
                if (entry.Kind == EntryKind.Missing)
                {
                    throw new InvalidDataException(
                        $"{modelId}: {full} is a symbolic link to {target}, which does not exist (a blob missing from the cache); download the model again.");
                }
                string real = Posix.RealPath(full);
                if (!real.StartsWith(inside, StringComparison.Ordinal))
                {
                    throw new InvalidDataException(
                        $"{modelId}: {full} is a symbolic link to {real}, outside the model's cache folder {root}; it is not read.");
                }
            }
            switch (entry.Kind)
            {
                case EntryKind.File:
                    break;
                case EntryKind.Directory:
                    if (!ancestors.Add((entry.Device, entry.Inode)))
                    {
                        throw new InvalidDataException($"{modelId}: {full} leads back into a folder that holds it (a loop of symbolic links).");
                    }
                    Walk(modelId, root, inside, full, ancestors, depth + 1);
                    ancestors.Remove((entry.Device, entry.Inode));
                    break;
                case EntryKind.Missing:
                    // Listed, yet not found: a name that is not UTF-8, or an entry deleted meanwhile; the model walk says which.
                    break;
                default:
                    throw new InvalidDataException($"{modelId}: {full} is a {Posix.Describe(entry.Kind)}, not a file.");
            }
        }
    }
}
