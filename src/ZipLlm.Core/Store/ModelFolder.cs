using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.IO;

namespace ZipLlm.Store;

/// <summary>
/// The files of a model folder, as the store records them: paths relative to the folder, '/'-separated, sorted.
/// <list type="bullet">
/// <item>A symlink to a file is read through: the file's bytes are stored and restored as a plain file (a Hugging
/// Face cache snapshot is a folder of such links).</item>
/// <item>A symlink to a folder is followed, unless it leads back into a folder that holds it (a loop).</item>
/// <item>A dangling symlink, a FIFO, socket or device, and a name that is not valid UTF-8 (it could not be
/// written back under the same name) are refused, naming the entry, before anything is stored.</item>
/// <item>Empty folders hold no files and are not recorded.</item>
/// </list>
/// </summary>
internal static class ModelFolder
{
    /// <summary>Most files one model may hold: far above any real model, low enough to stop a runaway walk.</summary>
    public const int MaxFiles = 100_000;

    /// <summary>Deepest nesting of folders followed.</summary>
    public const int MaxDepth = 64;

    /// <summary>Lists the files of <paramref name="folder"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">An entry cannot be stored as it is (see the class remarks), or there are too many.</exception>
    public static List<string> Enumerate(ModelId modelId, string folder)
    {
        string root = Path.GetFullPath(folder);
        EntryStatus status = Posix.Stat(root);
        if (status.Kind != EntryKind.Directory)
        {
            throw new DirectoryNotFoundException($"{modelId}: model folder {folder} does not exist.");
        }
        var files = new List<string>();
        var ancestors = new HashSet<(ulong, ulong)> { (status.Device, status.Inode) };
        Walk(modelId, root, "", ancestors, files, depth: 0);
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    private static void Walk(ModelId modelId, string directory, string prefix, HashSet<(ulong, ulong)> ancestors, List<string> files, int depth)
    {
        if (depth >= MaxDepth)
        {
            throw new InvalidDataException($"{modelId}: {prefix} is nested more than {MaxDepth} folders deep.");
        }
        var names = Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).ToList();
        names.Sort(StringComparer.Ordinal);
        foreach (string? name in names)
        {
            string full = Path.Combine(directory, name!);
            string relative = prefix + name;
            EntryStatus entry = Posix.Lstat(full);
            if (entry.Kind == EntryKind.Missing && !File.Exists(full) && !Directory.Exists(full))
            {
                // Listed, yet not found by its name: the name's bytes are not UTF-8 and did not survive decoding.
                throw new InvalidDataException($"{modelId}: \"{relative}\" has a name that is not valid UTF-8; rename it to store the model.");
            }
            if (entry.Kind == EntryKind.SymbolicLink)
            {
                entry = Posix.Stat(full);
                if (entry.Kind == EntryKind.Missing)
                {
                    throw new InvalidDataException($"{modelId}: \"{relative}\" is a symbolic link to nothing (its target {File.ResolveLinkTarget(full, returnFinalTarget: false)?.FullName} does not exist).");
                }
            }
            switch (entry.Kind)
            {
                case EntryKind.File:
                    files.Add(relative);
                    if (files.Count > MaxFiles)
                    {
                        throw new InvalidDataException($"{modelId}: the model folder holds more than {MaxFiles} files.");
                    }
                    break;
                case EntryKind.Directory:
                    if (!ancestors.Add((entry.Device, entry.Inode)))
                    {
                        throw new InvalidDataException($"{modelId}: \"{relative}\" leads back into a folder that holds it (a loop of symbolic links).");
                    }
                    Walk(modelId, full, relative + "/", ancestors, files, depth + 1);
                    ancestors.Remove((entry.Device, entry.Inode));
                    break;
                case EntryKind.Missing:
                    // Deleted since it was listed: the folder is changing under us.
                    throw new FileChangedException($"{modelId}: \"{relative}\" vanished while the model folder was read.");
                default:
                    throw new InvalidDataException($"{modelId}: \"{relative}\" is a {Posix.Describe(entry.Kind)}, not a file; only files can be stored.");
            }
        }
    }
}
