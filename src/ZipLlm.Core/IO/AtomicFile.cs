using System.Runtime.InteropServices;
using System.Text;

namespace ZipLlm.IO;

/// <summary>
/// Writes files so that readers see either nothing or the whole file: a temporary name in the same
/// file system, a flush, a rename. Temporary names carry the writer's process id, so files left by a
/// killed process can be told from those of a live one.
/// </summary>
internal static partial class AtomicFile
{
    private const string TempSuffix = ".tmp";

    /// <summary>
    /// Writes <paramref name="bytes"/> to <paramref name="path"/>, durably, through a temporary file in
    /// <paramref name="tempDir"/> (same file system) or beside it.
    /// </summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes, string? tempDir = null)
    {
        using var writer = new AtomicFileWriter(path, tempDir);
        writer.Stream.Write(bytes);
        writer.Commit(durable: true);
    }

    /// <summary>
    /// Writes <paramref name="bytes"/> to <paramref name="path"/>, durably and atomically, only when nothing is there:
    /// false, and nothing written, when something is.
    /// </summary>
    public static bool TryCreate(string path, ReadOnlySpan<byte> bytes, string? tempDir = null)
    {
        using var writer = new AtomicFileWriter(path, tempDir);
        writer.Stream.Write(bytes);
        return writer.CommitIfAbsent(durable: true) is not null;
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark, durably.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));

    /// <summary>A fresh temporary name for <paramref name="path"/>, in <paramref name="tempDir"/> or else beside it.</summary>
    public static string TempPathFor(string path, string? tempDir = null)
    {
        string full = Path.GetFullPath(path);
        string folder = tempDir ?? Path.GetDirectoryName(full) ?? ".";
        return Path.Combine(folder, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}");
    }

    /// <summary>
    /// Removes temporary files in <paramref name="folder"/> left by processes that are no longer running
    /// (a crash or a kill); files of live processes are left alone.
    /// </summary>
    public static void SweepStale(string folder)
    {
        if (!Directory.Exists(folder))
        {
            return;
        }
        foreach (string file in Directory.EnumerateFiles(folder, "." + "*" + TempSuffix))
        {
            // .{name}.{pid}.{guid}.tmp
            string[] parts = Path.GetFileName(file).Split('.');
            if (parts.Length >= 4 && int.TryParse(parts[^3], out int pid) && !IsAlive(pid))
            {
                TryDelete(file);
            }
        }
    }

    /// <summary>Flushes every written file of the file system holding <paramref name="path"/> (Linux syncfs; nothing elsewhere).</summary>
    public static void SyncFileSystem(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            WithDirectory(path, fd => syncfs(fd));
        }
    }

    /// <summary>Makes a rename in <paramref name="directory"/> durable.</summary>
    public static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsLinux())
        {
            WithDirectory(directory, fd => fsync(fd));
        }
    }

    /// <summary>Deletes a file if it can; never throws.</summary>
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

    private static void WithDirectory(string path, Func<int, int> call)
    {
        int fd = open(path, 0 /* O_RDONLY */);
        if (fd >= 0)
        {
            _ = call(fd);
            _ = close(fd);
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

    /// <summary>
    /// Gives <paramref name="existing"/> the further name <paramref name="newName"/>, only if that name is free:
    /// false when it is taken. Elsewhere than Linux, a move that refuses to overwrite (not atomic against a racer).
    /// </summary>
    /// <exception cref="IOException">The link fails for another reason.</exception>
    public static bool TryLink(string existing, string newName)
    {
        if (!OperatingSystem.IsLinux())
        {
            if (File.Exists(newName))
            {
                return false;
            }
            File.Copy(existing, newName, overwrite: false);
            return true;
        }
        if (link(existing, newName) == 0)
        {
            return true;
        }
        int errno = Marshal.GetLastPInvokeError();
        const int EExist = 17;
        if (errno == EExist)
        {
            return false;
        }
        throw new IOException($"{newName}: cannot create it: {Marshal.GetPInvokeErrorMessage(errno)}.");
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldPath, string newPath);

    /// <summary>Asks the kernel to start writing the file's dirty pages to disk, without waiting (Linux only; best effort).</summary>
    internal static bool StartWriteback(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        const uint SyncFileRangeWrite = 2;
        return OperatingSystem.IsLinux() && sync_file_range((int)handle.DangerousGetHandle(), 0, 0, SyncFileRangeWrite) == 0;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sync_file_range(int fd, long offset, long nbytes, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}

/// <summary>
/// A file being written under a temporary name; <see cref="Commit(bool)"/> renames it into place, and
/// disposing without a commit deletes it, so a failure never leaves a half-written file.
/// </summary>
internal sealed class AtomicFileWriter : IDisposable
{
    // Below the large-object threshold: a store writes one file per object, and a buffer per file on the
    // large-object heap made the peak memory of compress grow with the number of objects until a full GC.
    private const int BufferSize = 64 << 10;

    private readonly string _path;
    private readonly string _temporary;
    private FileStream? _stream;
    private LimitedFileStream? _writes;

    /// <summary>Starts writing <paramref name="path"/>; the temporary file goes in <paramref name="tempDir"/> (same file system) or beside the target.</summary>
    public AtomicFileWriter(string path, string? tempDir = null)
    {
        _path = Path.GetFullPath(path);
        _temporary = AtomicFile.TempPathFor(_path, tempDir);
        Directory.CreateDirectory(Path.GetDirectoryName(_temporary)!);
        _stream = new FileStream(_temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize);
        _writes = new LimitedFileStream(_stream, _path);
    }

    /// <summary>Where to write the content.</summary>
    public Stream Stream => _stream is null ? throw new ObjectDisposedException(_path) : _writes!;

    /// <summary>Flushes (to disk when <paramref name="durable"/>) and renames the file into place, replacing what is there.</summary>
    /// <returns>The file's length.</returns>
    public long Commit(bool durable = true) => Commit(durable, replace: true) ?? 0;

    /// <summary>
    /// Puts the file in place only when nothing is there yet; returns null, and removes the temporary file, when
    /// something is. The new name is made by link(2), which fails when the name exists, so two writers cannot both win.
    /// </summary>
    public long? CommitIfAbsent(bool durable = true) => Commit(durable, replace: false);

    private long? Commit(bool durable, bool replace)
    {
        FileStream stream = _stream ?? throw new ObjectDisposedException(_path);
        LimitedFileStream.Translate(_path, () => stream.Flush(flushToDisk: durable));
        if (!durable)
        {
            // Start writing it out now, without waiting: the later syncfs then finds little left to do.
            _ = AtomicFile.StartWriteback(stream.SafeFileHandle);
        }
        long length = stream.Length;
        stream.Dispose();
        _stream = null;
        string folder = Path.GetDirectoryName(_path)!;
        try
        {
            // Inside the try: a folder that cannot be made (a full disk, a file in its place) must not strand the temporary file.
            Directory.CreateDirectory(folder);
            if (replace)
            {
                File.Move(_temporary, _path, overwrite: true);
            }
            else if (!AtomicFile.TryLink(_temporary, _path))
            {
                AtomicFile.TryDelete(_temporary);
                return null;
            }
            else
            {
                AtomicFile.TryDelete(_temporary);
            }
        }
        catch
        {
            AtomicFile.TryDelete(_temporary);
            throw;
        }
        if (durable)
        {
            AtomicFile.SyncDirectory(folder);
        }
        return length;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_stream is not null)
        {
            FileStream stream = _stream;
            _stream = null;
            try
            {
                // Closing flushes what is buffered, which fails again when writing failed (a full disk): the file
                // is being thrown away, so that error must neither keep it on disk nor hide the first one.
                stream.Dispose();
            }
            catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
            {
            }
            finally
            {
                AtomicFile.TryDelete(_temporary);
            }
        }
    }
}

/// <summary>
/// A file being written, whose writes past the file system's or the process's file-size limit (EFBIG, which .NET
/// reports as an <see cref="ArgumentOutOfRangeException"/> of the length) fail as the I/O errors they are, naming the
/// file, as a full disk's do.
/// </summary>
internal sealed class LimitedFileStream(FileStream inner, string path) : Stream
{
    /// <summary>Runs <paramref name="write"/>, turning a file-size limit into an <see cref="IOException"/> naming <paramref name="path"/>.</summary>
    public static void Translate(string path, Action write)
    {
        try
        {
            write();
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new IOException($"{path}: the file would be larger than the file system (or the process's file-size limit) allows.", ex);
        }
    }

    /// <inheritdoc/>
    public override bool CanRead => false;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override bool CanWrite => inner.CanWrite;

    /// <inheritdoc/>
    public override long Length => inner.Length;

    /// <inheritdoc/>
    public override long Position
    {
        get => inner.Position;
        set => throw new NotSupportedException();
    }

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        try
        {
            inner.Write(buffer);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new IOException($"{path}: the file would be larger than the file system (or the process's file-size limit) allows.", ex);
        }
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        Write(buffer.AsSpan(offset, count));
    }

    /// <inheritdoc/>
    public override void WriteByte(byte value) => Write([value]);

    /// <inheritdoc/>
    public override void Flush() => Translate(path, inner.Flush);

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();
}
