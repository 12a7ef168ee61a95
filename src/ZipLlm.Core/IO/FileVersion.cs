using Microsoft.Win32.SafeHandles;

namespace ZipLlm.IO;

/// <summary>A file changed while it was being read (like tar's "file changed as we read it"): nothing of it is stored.</summary>
internal sealed class FileChangedException(string message) : IOException(message);

/// <summary>
/// The version of a file being read, as the file system tells it (inode, size, modification and change times to
/// the nanosecond), taken when it is opened and compared when reading is done: a file written, truncated, grown
/// or replaced in between is refused rather than stored as a mix of two versions.
/// </summary>
internal readonly struct FileVersion
{
    private readonly EntryStatus _opened;

    private FileVersion(EntryStatus opened) => _opened = opened;

    /// <summary>The version of the file open as <paramref name="handle"/>; take it before reading anything.</summary>
    public static FileVersion Of(SafeFileHandle handle, string path) => new(Posix.Fstat(handle, path));

    /// <summary>Throws when the open file, or what its path now names, is no longer the version first seen.</summary>
    /// <exception cref="FileChangedException">The file changed, or its path now names another file.</exception>
    public void ThrowIfChanged(SafeFileHandle handle, string path, string name)
    {
        if (!_opened.SameVersionAs(Posix.Fstat(handle, path)) || !_opened.SameVersionAs(Posix.Stat(path)))
        {
            throw new FileChangedException($"{name} changed while it was being read; nothing of it was stored. Run compress again once the file is stable.");
        }
    }
}
