using System.Globalization;
using Microsoft.Win32.SafeHandles;
using ZipLlm.Domain;
using ZipLlm.IO;
using ZipLlm.Config;

namespace ZipLlm.Store;

/// <summary>
/// The folder a restore writes into, for the length of one restore: resolved once (it may itself be a symlink),
/// refused when it is the store, inside it, or (with --force) a folder that must never be swept; locked, so a
/// second restore into it fails at once; and given a staging folder of the restore's own, named so that it is no
/// name of the model's, where files are written until every one is verified. <see cref="PlaceFiles"/> then renames
/// them into place, making real folders of whatever stands where the model's folders go, and with --force deletes
/// every other entry. Nothing is ever written, or deleted, through a symlink below the folder.
/// </summary>
internal sealed class OutputFolder : IDisposable
{
    /// <summary>
    /// Start of the name of the staging folder, inside the output folder; the rest of the name (process id and a
    /// GUID) is chosen so that it is not a top-level name of the model.
    /// </summary>
    public const string StagingPrefix = ".zipllm-staging-";

    private readonly Manifest _manifest;
    private readonly OutputPlan _plan;
    private readonly bool _force;
    private readonly SafeFileHandle _lock;

    private OutputFolder(Manifest manifest, OutputPlan plan, bool force, string root, SafeFileHandle folderLock, string staging)
    {
        _manifest = manifest;
        _plan = plan;
        _force = force;
        Root = root;
        _lock = folderLock;
        Staging = staging;
    }

    /// <summary>The output folder's real path.</summary>
    public string Root { get; }

    /// <summary>The staging folder inside it.</summary>
    public string Staging { get; }

    /// <summary>Prepares <paramref name="outputDir"/> for a restore of <paramref name="manifest"/>.</summary>
    /// <exception cref="ArgumentException">The folder is in the store, or with <paramref name="force"/> one that must never be swept.</exception>
    /// <exception cref="IOException">The folder is not a folder, is locked by another restore, or is not empty without <paramref name="force"/>.</exception>
    public static OutputFolder Open(Manifest manifest, string outputDir, bool force, string? storeRoot, IReadOnlyList<string> protectedFolders)
    {
        OutputPlan plan = OutputPlan.Create(manifest);
        string root = PrepareOutput(outputDir, force, storeRoot, protectedFolders);
        SafeFileHandle folderLock = Posix.TryLockDirectory(root)
            ?? throw new IOException($"{root}: another zipllm restore is writing into this folder; try again when it is done.");
        try
        {
            RemoveStaleStagingFolders(root, plan);
            if (!force && Directory.EnumerateFileSystemEntries(root).Any())
            {
                throw new IOException($"Output folder {root} is not empty; use --force to replace its content with the model.");
            }
            return new OutputFolder(manifest, plan, force, root, folderLock, CreateStagingFolder(root, plan));
        }
        catch
        {
            folderLock.Dispose();
            throw;
        }
    }

    /// <summary>Where the file at <paramref name="index"/> in the manifest is staged: named by its index, so no folders to create and no name of the model's.</summary>
    public string StagedPath(int index) => Path.Combine(Staging, index.ToString(CultureInfo.InvariantCulture));

    /// <summary>Renames every staged file into place; with --force, then deletes every entry that is not the model's.</summary>
    public void PlaceFiles()
    {
        for (int i = 0; i < _manifest.Files.Length; i++)
        {
            PlaceFile(Root, _manifest.Files[i].Path, StagedPath(i), _force);
        }
        if (_force)
        {
            RemoveOthers(Root, "", _plan, Path.GetFileName(Staging));
        }
    }

    /// <summary>Removes the staging folder (what is left of it), then lets go of the lock.</summary>
    public void Dispose()
    {
        TryDeleteTree(Staging);
        _lock.Dispose();
    }

    /// <summary>The real path of the output folder, created when missing once every refusal is made.</summary>
    private static string PrepareOutput(string outputDir, bool force, string? storeRootPath, IReadOnlyList<string> protectedFolders)
    {
        // The folder the user named may be a symlink, or lie under one: resolved once, here; below it no link is followed.
        string root = ResolveAsFarAsExists(Path.GetFullPath(outputDir));
        EntryKind kind = Posix.Lstat(root).Kind;
        if (kind is not (EntryKind.Directory or EntryKind.Missing))
        {
            throw new IOException($"Output folder {root} is a {Posix.Describe(kind)}, not a folder.");
        }
        // A store that is not in a local folder (memory, a bucket) cannot be written over.
        string? storeRoot = storeRootPath is null ? null : Posix.RealPath(storeRootPath);
        if (storeRoot is not null && IsSameOrInside(root, storeRoot))
        {
            throw new UsageException($"Output folder {root} is inside the store {storeRoot}; restore into a folder outside it.");
        }
        if (force)
        {
            if (IsProtectedFolder(root))
            {
                throw new UsageException($"Refusing --force into {root}: --force deletes every file in the output folder that is not the model's.");
            }
            if (storeRoot is not null && IsSameOrInside(storeRoot, root))
            {
                throw new UsageException($"Refusing --force into {root}: it holds the store {storeRoot}, which --force would delete.");
            }
            foreach (string folder in protectedFolders)
            {
                if (Directory.Exists(folder) && Posix.RealPath(folder) is var real && IsSameOrInside(real, root))
                {
                    throw new UsageException($"Refusing --force into {root}: it holds {real}, which --force would delete.");
                }
            }
        }
        if (kind == EntryKind.Missing)
        {
            try
            {
                Directory.CreateDirectory(root);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Under a file, in /proc, on a read-only mount: .NET's own words name no folder to make.
                throw new IOException($"Cannot make the output folder {root}: {ex.Message}", ex);
            }
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

        /// <summary>The plan of <paramref name="manifest"/>, whose paths <see cref="Manifest.Parse"/> checked: safe, distinct, never both a file and a folder.</summary>
        public static OutputPlan Create(Manifest manifest)
        {
            var files = new HashSet<string>(StringComparer.Ordinal);
            var folders = new HashSet<string>(StringComparer.Ordinal);
            var top = new HashSet<string>(StringComparer.Ordinal);
            foreach (StoredFile file in manifest.Files)
            {
                string[] parts = file.Path.Split('/');
                files.Add(file.Path);
                top.Add(parts[0]);
                for (int i = 1; i < parts.Length; i++)
                {
                    folders.Add(string.Join('/', parts, 0, i));
                }
            }
            return new OutputPlan(files, folders, top);
        }
    }
}
