using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ZipLlm.IO;

/// <summary>What kind of file system entry a path names, as lstat sees it (a symlink is not followed).</summary>
internal enum EntryKind
{
    /// <summary>Nothing is there.</summary>
    Missing,
    /// <summary>A regular file.</summary>
    File,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A symbolic link (whatever it points to).</summary>
    SymbolicLink,
    /// <summary>A FIFO, socket or device: never data of ours.</summary>
    Other,
}

/// <summary>What statx says of one entry: its kind, identity and change times.</summary>
/// <param name="Kind">The entry's kind.</param>
/// <param name="Device">The device holding it (major, minor packed).</param>
/// <param name="Inode">Its inode number.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="ModifiedNanoseconds">Last data change, in nanoseconds since the epoch.</param>
/// <param name="ChangedNanoseconds">Last data or metadata change (ctime), in nanoseconds since the epoch.</param>
internal readonly record struct EntryStatus(EntryKind Kind, ulong Device, ulong Inode, long Size, long ModifiedNanoseconds, long ChangedNanoseconds)
{
    /// <summary>When the data last changed.</summary>
    public DateTimeOffset Modified => DateTimeOffset.UnixEpoch.AddTicks(ModifiedNanoseconds / 100);

    /// <summary>Whether the two name the same file with the same content as far as the file system can tell.</summary>
    public bool SameVersionAs(EntryStatus other) =>
        Device == other.Device && Inode == other.Inode && Size == other.Size
        && ModifiedNanoseconds == other.ModifiedNanoseconds && ChangedNanoseconds == other.ChangedNanoseconds;
}

/// <summary>
/// The few Linux calls .NET does not expose: statx (file kind, inode and nanosecond times, without following
/// symlinks), opening without following symlinks or blocking on a FIFO, and flock on a directory.
/// On other systems the answers come from .NET's own file APIs, with less detail.
/// </summary>
internal static partial class Posix
{
    // statx(2): the layout is the same on every Linux architecture.
    private const int StatxBufferSize = 256;
    private const int StatxModeOffset = 28, StatxInodeOffset = 32, StatxSizeOffset = 40;
    private const int StatxCtimeOffset = 96, StatxMtimeOffset = 112, StatxDevMajorOffset = 136, StatxDevMinorOffset = 140;
    private const uint StatxBasicStats = 0x7ff;
    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, AtEmptyPath = 0x1000;

    // st_mode file types.
    private const int ModeTypeMask = 0xF000, ModeRegular = 0x8000, ModeDirectory = 0x4000, ModeSymlink = 0xA000;

    // open(2) flags on Linux. O_RDONLY, O_NONBLOCK and O_CLOEXEC are the same on x86-64 and arm64; O_DIRECTORY and
    // O_NOFOLLOW are not (arm64's are 0x4000 and 0x8000, where x86-64's 0x10000 and 0x20000 mean O_DIRECT and O_LARGEFILE).
    private const int ORdOnly = 0, ONonBlock = 0x800, OCloExec = 0x80000;
    private static readonly bool s_arm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
    private static readonly int ODirectory = s_arm64 ? 0x4000 : 0x10000, ONoFollow = s_arm64 ? 0x8000 : 0x20000;

    // flock(2).
    private const int LockExclusive = 2, LockNonBlocking = 4;
    private const int EWouldBlock = 11, ENoEnt = 2, ENotDir = 20, ELoop = 40, EIntr = 4;

    /// <summary>The status of <paramref name="path"/> itself (a symlink is reported as one, never followed).</summary>
    /// <exception cref="IOException">The entry cannot be examined (permission, I/O error).</exception>
    public static EntryStatus Lstat(string path) =>
        OperatingSystem.IsLinux() ? StatPath(path, AtSymlinkNoFollow) : FallbackStatus(path);

    /// <summary>The status of what <paramref name="path"/> names, following symlinks (Missing for a dangling one).</summary>
    /// <exception cref="IOException">The entry cannot be examined (permission, I/O error, a loop of symlinks).</exception>
    public static EntryStatus Stat(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            var info = new FileInfo(path);
            return info.LinkTarget is null ? FallbackStatus(path) : FallbackStatus(info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path);
        }
        return StatPath(path, flags: 0);
    }

    private static EntryStatus StatPath(string path, int flags)
    {
        Span<byte> buffer = stackalloc byte[StatxBufferSize];
        if (statx(AtFdCwd, path, flags, StatxBasicStats, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is ENoEnt or ENotDir)
            {
                return default;
            }
            throw new IOException($"{path}: cannot examine it: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }
        return Parse(buffer);
    }

    /// <summary>The status of an open file.</summary>
    /// <exception cref="IOException">The file cannot be examined.</exception>
    public static EntryStatus Fstat(SafeFileHandle handle, string name)
    {
        if (!OperatingSystem.IsLinux())
        {
            return new EntryStatus(EntryKind.File, 0, 0, RandomAccess.GetLength(handle), 0, 0);
        }
        Span<byte> buffer = stackalloc byte[StatxBufferSize];
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (statx((int)handle.DangerousGetHandle(), "", AtEmptyPath, StatxBasicStats, ref MemoryMarshal.GetReference(buffer)) != 0)
            {
                throw new IOException($"{name}: cannot examine it: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
        return Parse(buffer);
    }

    /// <summary>
    /// Opens a regular file for reading without following a symlink at its last component and without
    /// blocking on a FIFO; anything that is not a regular file is refused.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing is there.</exception>
    /// <exception cref="InvalidDataException">The entry is a symlink, a directory, a FIFO or a device.</exception>
    /// <exception cref="IOException">It cannot be opened.</exception>
    public static SafeFileHandle OpenRegularFileForReading(string path, string name) => OpenRegularFileForReading(path, name, followLink: false);

    /// <summary>
    /// Opens a regular file for reading without blocking on a FIFO, following a symlink at its last component when
    /// <paramref name="followLink"/> is set (a config file may be a link); anything that is not a regular file is refused.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing is there.</exception>
    /// <exception cref="InvalidDataException">The entry is a directory, a FIFO or a device (or a symlink, unless followed).</exception>
    /// <exception cref="IOException">It cannot be opened.</exception>
    public static SafeFileHandle OpenRegularFileForReading(string path, string name, bool followLink)
    {
        if (!OperatingSystem.IsLinux())
        {
            EntryStatus status = followLink ? Stat(path) : FallbackStatus(path);
            RefuseUnlessFile(status.Kind, path, name);
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, FileOptions.RandomAccess);
        }
        int fd;
        do
        {
            fd = open(path, ORdOnly | ONonBlock | (followLink ? 0 : ONoFollow) | OCloExec);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EIntr);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is ENoEnt or ENotDir)
            {
                throw new FileNotFoundException($"{name} is missing.", path);
            }
            if (errno == ELoop)
            {
                RefuseUnlessFile(EntryKind.SymbolicLink, path, name);
            }
            throw new IOException($"{name}: cannot open {path}: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            RefuseUnlessFile(Fstat(handle, name).Kind, path, name);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Takes an exclusive flock on the directory <paramref name="path"/> without waiting; the lock lasts until the
    /// returned handle is disposed or the process dies. Returns null when another process holds it.
    /// </summary>
    /// <exception cref="IOException">The directory cannot be opened, or is a symlink.</exception>
    public static SafeFileHandle? TryLockDirectory(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return new SafeFileHandle(IntPtr.Zero, ownsHandle: false);
        }
        int fd = open(path, ORdOnly | ODirectory | ONoFollow | OCloExec);
        if (fd < 0)
        {
            throw new IOException($"{path}: cannot open the folder to lock it: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (flock(fd, LockExclusive | LockNonBlocking) == 0)
        {
            return handle;
        }
        int errno = Marshal.GetLastPInvokeError();
        handle.Dispose();
        if (errno == EWouldBlock)
        {
            return null;
        }
        throw new IOException($"{path}: cannot lock the folder: {Marshal.GetPInvokeErrorMessage(errno)}.");
    }

    /// <summary>
    /// The canonical absolute path of an existing <paramref name="path"/>: every symlink along it resolved,
    /// no <c>.</c> or <c>..</c> left.
    /// </summary>
    /// <exception cref="IOException">The path does not exist or cannot be resolved.</exception>
    public static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        if (!OperatingSystem.IsLinux())
        {
            return Path.TrimEndingDirectorySeparator(new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full);
        }
        nint resolved = realpath(full, 0);
        if (resolved == 0)
        {
            throw new IOException($"{path}: cannot resolve it: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }
        try
        {
            return Marshal.PtrToStringUTF8(resolved) ?? full;
        }
        finally
        {
            free(resolved);
        }
    }

    private static void RefuseUnlessFile(EntryKind kind, string path, string name)
    {
        switch (kind)
        {
            case EntryKind.File:
                return;
            case EntryKind.Missing:
                throw new FileNotFoundException($"{name} is missing.", path);
            default:
                throw new InvalidDataException($"{name} is not a regular file (it is a {Describe(kind)}).");
        }
    }

    /// <summary>A word for a kind of entry, for messages.</summary>
    public static string Describe(EntryKind kind) => kind switch
    {
        EntryKind.File => "file",
        EntryKind.Directory => "folder",
        EntryKind.SymbolicLink => "symbolic link",
        EntryKind.Missing => "missing entry",
        _ => "FIFO, socket or device",
    };

    private static EntryStatus Parse(ReadOnlySpan<byte> buffer)
    {
        int mode = BinaryPrimitives.ReadUInt16LittleEndian(buffer[StatxModeOffset..]) & ModeTypeMask;
        EntryKind kind = mode switch
        {
            ModeRegular => EntryKind.File,
            ModeDirectory => EntryKind.Directory,
            ModeSymlink => EntryKind.SymbolicLink,
            _ => EntryKind.Other,
        };
        ulong device = ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(buffer[StatxDevMajorOffset..]) << 32)
            | BinaryPrimitives.ReadUInt32LittleEndian(buffer[StatxDevMinorOffset..]);
        return new EntryStatus(kind, device,
            BinaryPrimitives.ReadUInt64LittleEndian(buffer[StatxInodeOffset..]),
            (long)BinaryPrimitives.ReadUInt64LittleEndian(buffer[StatxSizeOffset..]),
            Nanoseconds(buffer[StatxMtimeOffset..]),
            Nanoseconds(buffer[StatxCtimeOffset..]));
    }

    // struct statx_timestamp { __s64 tv_sec; __u32 tv_nsec; __s32 reserved; }
    private static long Nanoseconds(ReadOnlySpan<byte> timestamp) =>
        BinaryPrimitives.ReadInt64LittleEndian(timestamp) * 1_000_000_000 + BinaryPrimitives.ReadUInt32LittleEndian(timestamp[8..]);

    private static EntryStatus FallbackStatus(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null)
        {
            return new EntryStatus(EntryKind.SymbolicLink, 0, 0, 0, 0, 0);
        }
        if (Directory.Exists(path))
        {
            return new EntryStatus(EntryKind.Directory, 0, 0, 0, 0, 0);
        }
        return info.Exists
            ? new EntryStatus(EntryKind.File, 0, 0, info.Length, info.LastWriteTimeUtc.Ticks * 100, info.LastWriteTimeUtc.Ticks * 100)
            : default;
    }

    /// <summary>
    /// Asks Linux to back <paramref name="length"/> bytes of fresh anonymous memory at <paramref name="start"/> (aligned
    /// to 2 MiB) with transparent huge pages; a hint, ignored where it is refused or not Linux.
    /// </summary>
    public static unsafe void AdviseHugePages(void* start, int length)
    {
        if (OperatingSystem.IsLinux())
        {
            _ = madvise(start, (nuint)length, MadviseHugePage);
        }
    }

    private const int MadviseHugePage = 14; // MADV_HUGEPAGE

    [LibraryImport("libc")]
    private static unsafe partial int madvise(void* start, nuint length, int advice);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath(string path, nint resolved);

    [LibraryImport("libc")]
    private static partial void free(nint pointer);
}
