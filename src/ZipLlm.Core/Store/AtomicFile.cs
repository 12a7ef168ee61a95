using System.Runtime.InteropServices;

namespace ZipLlm.Store;

/// <summary>Writes files so that readers see either nothing or the whole file: temporary name, flush, rename.</summary>
internal static partial class AtomicFile
{
    /// <summary>
    /// Writes a file at <paramref name="path"/> through <paramref name="write"/> into a temporary file in
    /// <paramref name="tempDir"/>, then renames it into place (replacing what is there).
    /// </summary>
    /// <param name="path">Final path of the file.</param>
    /// <param name="tempDir">Folder for the temporary file, on the same file system.</param>
    /// <param name="write">Writes the content.</param>
    /// <param name="durable">Flush the file to disk before the rename (manifests); objects are made durable in bulk by <see cref="SyncFileSystem"/>.</param>
    public static long Write(string path, string tempDir, bool durable, Action<Stream> write)
    {
        string temp = TempName(tempDir);
        long length;
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: durable);
                length = stream.Length;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        if (durable)
        {
            SyncDirectory(Path.GetDirectoryName(path)!);
        }
        return length;
    }

    /// <summary>A fresh temporary file name that carries this process's id, so stale ones can be recognised.</summary>
    public static string TempName(string tempDir) =>
        Path.Combine(tempDir, $"{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    /// <summary>
    /// Removes temporary files left by processes that are no longer running (a crash or a kill);
    /// files of live processes are left alone.
    /// </summary>
    public static void SweepStale(string tempDir)
    {
        if (!Directory.Exists(tempDir))
        {
            return;
        }
        foreach (string file in Directory.EnumerateFiles(tempDir, "*.tmp"))
        {
            string name = Path.GetFileName(file);
            int dot = name.IndexOf('.');
            if (dot > 0 && int.TryParse(name.AsSpan(0, dot), out int pid) && !IsAlive(pid))
            {
                TryDelete(file);
            }
        }
    }

    /// <summary>Flushes every written file of the file system holding <paramref name="path"/> (Linux syncfs; a full sync elsewhere).</summary>
    public static void SyncFileSystem(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        int fd = open(path, 0 /* O_RDONLY */);
        if (fd >= 0)
        {
            _ = syncfs(fd);
            _ = close(fd);
        }
    }

    /// <summary>Makes a rename in <paramref name="directory"/> durable.</summary>
    public static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        int fd = open(directory, 0 /* O_RDONLY */);
        if (fd >= 0)
        {
            _ = fsync(fd);
            _ = close(fd);
        }
    }

    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static bool IsAlive(int pid)
    {
        if (pid == Environment.ProcessId)
        {
            return true;
        }
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int syncfs(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
