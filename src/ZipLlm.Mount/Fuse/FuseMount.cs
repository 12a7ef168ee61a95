using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace ZipLlm.Mount.Fuse;

/// <summary>
/// A FUSE file system mounted at a folder and served: read-only, nosuid, nodev, mounted with <c>mount(2)</c> as root
/// or through <c>fusermount3</c> otherwise, and served with a <see cref="FuseServer"/> until the mount ends.
/// </summary>
internal sealed class FuseMount : IDisposable
{
    private const string Device = "/dev/fuse";
    private readonly int _fd;
    private readonly ILogger _logger;
    // Mounted by fusermount3 (not root): unmounted by it too.
    private readonly bool _byFusermount;
    private int _unmounted;

    private FuseMount(string mountPoint, int fd, FuseServer server, ILogger logger, bool byFusermount)
    {
        _byFusermount = byFusermount;
        MountPoint = mountPoint;
        _fd = fd;
        Server = server;
        _logger = logger;
    }

    /// <summary>The folder the file system is mounted at.</summary>
    public string MountPoint { get; }

    /// <summary>The server answering the kernel.</summary>
    public FuseServer Server { get; }

    /// <summary>
    /// Checks that <paramref name="mountPoint"/> can take a mount: a folder, empty, and not a mount point already
    /// (one left by a killed mount is one too: <c>fusermount3 -u</c> clears it).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">There is no folder there.</exception>
    /// <exception cref="IOException">It is a mount point already, or not empty.</exception>
    public static void CheckMountPoint(string mountPoint)
    {
        if (MountInfo.IsMountPoint(mountPoint))
        {
            throw new IOException($"The mount point {mountPoint} is busy: something is mounted there already (if a mount was killed, 'fusermount3 -u {mountPoint}' clears it).");
        }
        if (!Directory.Exists(mountPoint))
        {
            throw new DirectoryNotFoundException($"The mount point {mountPoint} does not exist (or is not a folder): create an empty folder there first.");
        }
        if (Directory.EnumerateFileSystemEntries(mountPoint).Any())
        {
            throw new IOException($"The mount point {mountPoint} is not empty: mount over an empty folder, so nothing is hidden.");
        }
    }

    /// <summary>
    /// Mounts <paramref name="fileSystem"/> at <paramref name="mountPoint"/> and starts serving it: as root with
    /// <c>mount(2)</c>, otherwise through <c>fusermount3</c> (set-uid root), which mounts and hands the device back
    /// over a socket (<c>_FUSE_COMMFD</c>), as libfuse and go-fuse do.
    /// </summary>
    /// <param name="mountPoint">An empty folder (see <see cref="CheckMountPoint"/>), full path.</param>
    /// <param name="fileSystem">What to serve.</param>
    /// <param name="allowOther">Let users other than the mounting one see the files.</param>
    /// <param name="logger">Where failures go.</param>
    /// <exception cref="IOException"><c>/dev/fuse</c> cannot be opened, or the mount is refused.</exception>
    public static FuseMount Mount(string mountPoint, IFuseFileSystem fileSystem, bool allowOther, ILogger logger)
    {
        bool root = FuseNative.GetEffectiveUid() == 0;
        int fd = root ? MountAsRoot(mountPoint, allowOther) : MountWithFusermount(mountPoint, allowOther);
        var server = new FuseServer(fd, fileSystem, logger, readers: 4);
        server.Start();
        return new FuseMount(mountPoint, fd, server, logger, byFusermount: !root);
    }

    private static string Options(bool allowOther) => allowOther ? $"max_read={FuseServer.MaxRead},allow_other" : $"max_read={FuseServer.MaxRead}";

    private static int MountAsRoot(string mountPoint, bool allowOther)
    {
        int fd = FuseNative.Open(Device, FuseNative.O_RDWR | FuseNative.O_CLOEXEC);
        if (fd < 0)
        {
            (int errno, string message) = FuseNative.LastError();
            throw new IOException(errno == Errno.ENOENT
                ? $"{Device} does not exist: this machine has no FUSE (install fuse3, or load the fuse module)."
                : $"Cannot open {Device}: {message}.");
        }
        string options = string.Create(CultureInfo.InvariantCulture,
            $"fd={fd},rootmode=40000,user_id={FuseNative.GetUid()},group_id={FuseNative.GetGid()},{Options(allowOther)}");
        if (FuseNative.Mount("zipllm", mountPoint, "fuse.zipllm", FuseNative.MS_RDONLY | FuseNative.MS_NOSUID | FuseNative.MS_NODEV, options) != 0)
        {
            (int errno, string message) = FuseNative.LastError();
            FuseNative.Close(fd);
            throw new IOException(errno switch
            {
                Errno.EBUSY => $"The mount point {mountPoint} is busy.",
                _ => $"Cannot mount at {mountPoint}: {message}.",
            });
        }
        return fd;
    }

    private static unsafe int MountWithFusermount(string mountPoint, bool allowOther)
    {
        int* fds = stackalloc int[2];
        if (FuseNative.SocketPair(FuseNative.AF_UNIX, FuseNative.SOCK_STREAM, 0, fds) != 0)
        {
            throw new IOException($"Cannot create a socket for fusermount3: {FuseNative.LastError().Message}.");
        }
        // fusermount3 inherits its end (no close-on-exec); ours stays here.
        FuseNative.Fcntl(fds[0], FuseNative.F_SETFD, FuseNative.FD_CLOEXEC);
        try
        {
            var start = new ProcessStartInfo("fusermount3") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string argument in new[] { "-o", $"ro,nosuid,nodev,subtype=zipllm,{Options(allowOther)}", "--", mountPoint })
            {
                start.ArgumentList.Add(argument);
            }
            start.Environment["_FUSE_COMMFD"] = fds[1].ToString(CultureInfo.InvariantCulture);
            Process process;
            try
            {
                process = Process.Start(start) ?? throw new IOException("fusermount3 did not start.");
            }
            catch (Win32Exception ex)
            {
                throw new IOException($"Mounting as a user other than root needs fusermount3 (Debian package fuse3): {ex.Message}.", ex);
            }
            using (process)
            {
                FuseNative.Close(fds[1]);
                fds[1] = -1;
                Task<string> errors = process.StandardError.ReadToEndAsync();
                int fd = ReceiveDescriptor(fds[0]);
                if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
                {
                    process.Kill();
                }
                if (fd < 0)
                {
                    string said = errors.Wait(TimeSpan.FromSeconds(5)) ? errors.Result.Trim() : "";
                    throw new IOException($"fusermount3 could not mount at {mountPoint}: {(said.Length > 0 ? said : "it gave no reason")}.");
                }
                FuseNative.Fcntl(fd, FuseNative.F_SETFD, FuseNative.FD_CLOEXEC);
                return fd;
            }
        }
        finally
        {
            FuseNative.Close(fds[0]);
            if (fds[1] >= 0)
            {
                FuseNative.Close(fds[1]);
            }
        }
    }

    /// <summary>The descriptor fusermount3 sends (<c>SCM_RIGHTS</c>, with one byte of data), or -1 when it sends none.</summary>
    private static unsafe int ReceiveDescriptor(int socket)
    {
        byte data;
        var vector = new FuseNative.IoVector { Base = &data, Length = 1 };
        var control = default(FuseNative.ControlWithDescriptor);
        var message = new FuseNative.MessageHeader
        {
            Vectors = &vector,
            VectorCount = 1,
            Control = &control,
            ControlLength = (nuint)sizeof(FuseNative.ControlWithDescriptor),
        };
        nint received;
        do
        {
            received = FuseNative.ReceiveMessage(socket, &message, 0);
        }
        while (received < 0 && FuseNative.LastError().Errno == Errno.EINTR);
        return received > 0 && message.ControlLength >= 20 && control.Level == FuseNative.SOL_SOCKET && control.Type == FuseNative.SCM_RIGHTS
            ? control.Descriptor
            : -1;
    }

    /// <summary>
    /// Turns the kernel's read-ahead for this mount up to <paramref name="kilobytes"/> (its <c>bdi</c>'s
    /// <c>read_ahead_kb</c>; the INIT reply cannot raise it past the kernel's default of 128 KiB). Best effort.
    /// </summary>
    public void RaiseReadahead(int kilobytes)
    {
        try
        {
            if (MountInfo.DeviceOf(MountPoint) is { } device)
            {
                File.WriteAllText($"/sys/class/bdi/{device}/read_ahead_kb", kilobytes.ToString(CultureInfo.InvariantCulture));
                _logger.LogDebug("Read-ahead of {MountPoint} set to {Kilobytes} KiB", MountPoint, kilobytes);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogDebug("Could not raise the read-ahead of {MountPoint}: {Message}", MountPoint, ex.Message);
        }
    }

    /// <summary>
    /// Unmounts (lazily when files are open: the mount point is free at once, open files read on until closed) and
    /// aborts the connection, so requests in flight fail instead of waiting. Idempotent; after an unmount from outside it does nothing.
    /// </summary>
    public void Unmount()
    {
        if (Interlocked.Exchange(ref _unmounted, 1) != 0 || Server.Completion.IsCompleted)
        {
            return;
        }
        string? device = MountInfo.DeviceOf(MountPoint);
        if (_byFusermount)
        {
            UnmountWithFusermount();
        }
        else if (FuseNative.Unmount(MountPoint, 0) != 0 && FuseNative.Unmount(MountPoint, FuseNative.MNT_DETACH) != 0)
        {
            (_, string message) = FuseNative.LastError();
            _logger.LogWarning("Could not unmount {MountPoint}: {Message}", MountPoint, message);
        }
        if (device is not null && device.Split(':') is [_, { } minor])
        {
            try
            {
                File.WriteAllText($"/sys/fs/fuse/connections/{minor}/abort", "1");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone already (the unmount ended it), or no fusectl: the process's exit closes the device.
            }
        }
    }

    private void UnmountWithFusermount()
    {
        var start = new ProcessStartInfo("fusermount3") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in new[] { "-u", "-z", "--", MountPoint })
        {
            start.ArgumentList.Add(argument);
        }
        try
        {
            using Process process = Process.Start(start) ?? throw new IOException("fusermount3 did not start.");
            Task<string> errors = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)) || process.ExitCode != 0)
            {
                _logger.LogWarning("Could not unmount {MountPoint}: {Message}", MountPoint, errors.IsCompleted ? errors.Result.Trim() : "fusermount3 -u did not finish");
            }
        }
        catch (Exception ex) when (ex is IOException or Win32Exception)
        {
            _logger.LogWarning("Could not unmount {MountPoint}: {Message}", MountPoint, ex.Message);
        }
    }

    /// <summary>Unmounts if still mounted; closes the device once the server has stopped reading it.</summary>
    public void Dispose()
    {
        Unmount();
        // A reader still blocked on the descriptor would read whatever took its number next: leave it to the exit.
        if (Server.Completion.IsCompleted)
        {
            FuseNative.Close(_fd);
        }
    }
}

/// <summary>Reads <c>/proc/self/mountinfo</c>: which folders are mount points, and their devices.</summary>
internal static class MountInfo
{
    /// <summary>Whether <paramref name="path"/> (a full path) is a mount point.</summary>
    public static bool IsMountPoint(string path) => DeviceOf(path) is not null;

    /// <summary>The <c>major:minor</c> of the file system mounted at <paramref name="path"/> (the last one mounted there), or null.</summary>
    public static string? DeviceOf(string path)
    {
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        string? device = null;
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            // ID PARENT MAJOR:MINOR ROOT MOUNT_POINT ...; the mount point with space, tab, newline, backslash as \ooo.
            string[] fields = line.Split(' ');
            if (fields.Length > 4 && Unescape(fields[4]) == target)
            {
                device = fields[2];
            }
        }
        return device;
    }

    internal static string Unescape(string field)
    {
        if (!field.Contains('\\'))
        {
            return field;
        }
        var bytes = new List<byte>(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                bytes.Add((byte)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(string field, int start) =>
        start + 3 <= field.Length && field.AsSpan(start, 3).IndexOfAnyExceptInRange('0', '7') < 0;
}
