using System.Diagnostics;
using System.Globalization;
using ZipLlm.IO;

namespace ZipLlm.Store.Backends;

/// <summary>
/// An advisory lock on a file (flock on Unix): shared locks coexist, an exclusive one excludes all.
/// The operating system releases it when the process dies, so a killed run never leaves a store locked.
/// </summary>
/// <remarks>
/// Each holder also leaves a record beside the lock file, <c>{lock}.{pid}.{id}.holder</c>, one line
/// <c>{pid} {shared|exclusive} {since, ISO 8601} {holder}</c>, removed on release. A process that waits reads
/// them to say whom it waits for; records of processes no longer running (a kill) are ignored and deleted.
/// On a store this process may read but not write (a read-only mount, another user's files), a shared lock is taken
/// through a read-only handle, which flock allows, and leaves no record; an exclusive one is refused at once.
/// </remarks>
internal sealed class FileLock : IDisposable
{
    private const string HolderSuffix = ".holder";

    // EROFS, as .NET reports an errno it has no exception type for (Linux and macOS alike).
    private const int ReadOnlyFileSystem = 30;

    // EWOULDBLOCK (EAGAIN) of flock(LOCK_NB), which .NET reports as an IOException carrying the raw errno: the only
    // failure that means another holder. Linux's number; macOS and the BSDs use 35.
    private const int WouldBlockLinux = 11;
    private const int WouldBlockBsd = 35;

    // Windows reports another holder as ERROR_SHARING_VIOLATION or ERROR_LOCK_VIOLATION in the HRESULT's low word.
    private const int SharingViolation = 32;
    private const int LockViolation = 33;

    // Per flow of execution (a verb's run, a test), so concurrent runs in one process keep their own.
    private static readonly AsyncLocal<Scope?> s_scope = new();

    private readonly FileStream _stream;
    private readonly string? _record;

    private FileLock(FileStream stream, string? record)
    {
        _stream = stream;
        _record = record;
    }

    /// <summary>
    /// Names the holder of the locks this flow of execution takes from now on (a verb: <c>compress</c>), as other
    /// processes waiting for them will see it, and reports to <paramref name="onWait"/>, once per lock, a lock that is
    /// not free at once, and to <paramref name="onNotice"/> what the user should know of a lock taken (a bucket's lock
    /// read without a lease, for want of write access). Ends when the result is disposed.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="holder"/> is empty or holds a line break.</exception>
    public static IDisposable BeginScope(string holder, Action<FileLockWait>? onWait, Action<string>? onNotice = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(holder);
        if (holder.AsSpan().ContainsAny('\r', '\n'))
        {
            throw new ArgumentException("The holder's name must be one line.", nameof(holder));
        }
        var scope = new Scope(holder, onWait, onNotice, s_scope.Value);
        s_scope.Value = scope;
        return scope;
    }

    /// <summary>Takes the lock, waiting up to <paramref name="timeout"/> for other holders to let go.</summary>
    /// <exception cref="TimeoutException">The lock was not free in time; the message names its holders.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    /// <exception cref="IOException">
    /// The lock file cannot be written, for an exclusive lock, or read, for a shared one; or it cannot be made or opened
    /// at all (no space or inodes left, an I/O error): the message names it.
    /// </exception>
    public static FileLock Acquire(string path, bool exclusive, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        bool readOnly = false;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        }
        catch (Exception ex) when (IsNotWritable(ex))
        {
            // The locks' folder cannot be made here: a reader goes on to open the lock file, or to say it is missing.
            readOnly = !exclusive ? true : throw ReadOnlyHere(path, ex);
        }
        var waited = Stopwatch.StartNew();
        bool reported = false;
        int delay = 5;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            IOException? busy;
            try
            {
                // .NET takes flock(LOCK_EX) for FileShare.None and flock(LOCK_SH) otherwise, without blocking.
                var stream = new FileStream(path, readOnly ? FileMode.Open : FileMode.OpenOrCreate, readOnly ? FileAccess.Read : FileAccess.ReadWrite,
                    exclusive ? FileShare.None : FileShare.ReadWrite, bufferSize: 1);
                return new FileLock(stream, readOnly ? null : WriteRecord(path, exclusive));
            }
            catch (Exception ex) when (!readOnly && IsNotWritable(ex))
            {
                readOnly = !exclusive ? true : throw ReadOnlyHere(path, ex);
                continue;
            }
            catch (IOException ex) when (readOnly && ex is FileNotFoundException or DirectoryNotFoundException)
            {
                throw new IOException($"Cannot take the lock {path}: the store is read-only here and its lock file is missing.", ex);
            }
            catch (IOException ex) when (IsHeldElsewhere(ex))
            {
                busy = ex;
            }
            catch (IOException ex)
            {
                // Out of space or inodes, an I/O error: no holder will ever let go of that, so waiting would not help.
                throw new IOException($"Cannot take the lock {path}: {ex.Message}", ex);
            }
            if (waited.Elapsed >= timeout)
            {
                throw new TimeoutException(
                    $"Timed out after {timeout.TotalSeconds:F0} s waiting for the lock {path}; held by {FileLockWait.Describe(Blocking(path, exclusive))}.", busy);
            }
            if (!reported && s_scope.Value?.OnWait is { } onWait)
            {
                // A holder writes its record just after it takes the lock: give it a moment before saying "unknown".
                IReadOnlyList<FileLockHolder> holders = Blocking(path, exclusive);
                if (holders.Count > 0 || waited.Elapsed > TimeSpan.FromMilliseconds(250))
                {
                    reported = true;
                    onWait(new FileLockWait(path, exclusive, holders));
                }
            }
            cancellationToken.WaitHandle.WaitOne(delay);
            delay = Math.Min(delay * 2, 200);
        }
    }

    private static IOException ReadOnlyHere(string path, Exception ex) =>
        new($"Cannot take the lock {path} to change the store: it is read-only here " +
            $"({(ex is UnauthorizedAccessException ? "permission denied" : "read-only file system")}).", ex);

    /// <summary>Whether opening the lock file failed because another holder has it locked (not for want of space, inodes or a disk).</summary>
    private static bool IsHeldElsewhere(IOException ex) =>
        OperatingSystem.IsWindows() ? (ex.HResult & 0xFFFF) is SharingViolation or LockViolation
        : ex.HResult == (OperatingSystem.IsLinux() ? WouldBlockLinux : WouldBlockBsd);

    /// <summary>Whether opening a file for writing failed for want of the right to write: a read-only file system, or permissions.</summary>
    private static bool IsNotWritable(Exception ex) => ex is UnauthorizedAccessException || (ex is IOException && ex.HResult == ReadOnlyFileSystem);

    /// <summary>The holder named by this flow's scope (a verb: <c>compress</c>), or the process's name.</summary>
    internal static string CurrentHolder => s_scope.Value?.Holder ?? DefaultHolder();

    /// <summary>Tells this flow's scope that a lock of another kind than a file's (a lease in a bucket) is not free.</summary>
    internal static void ReportWait(FileLockWait wait) => s_scope.Value?.OnWait?.Invoke(wait);

    /// <summary>Tells this flow's scope something the user should know of a lock it took (see <see cref="BeginScope"/>).</summary>
    internal static void ReportNotice(string message) => s_scope.Value?.OnNotice?.Invoke(message);

    /// <summary>The live holders recorded for the lock at <paramref name="path"/>; stale records are deleted.</summary>
    public static IReadOnlyList<FileLockHolder> ReadHolders(string path)
    {
        string? folder = Path.GetDirectoryName(path);
        if (folder is null || !Directory.Exists(folder))
        {
            return [];
        }
        var holders = new List<FileLockHolder>();
        foreach (string record in Directory.EnumerateFiles(folder, Path.GetFileName(path) + ".*" + HolderSuffix))
        {
            string text;
            try
            {
                text = File.ReadAllText(record);
            }
            catch (IOException)
            {
                continue; // released as we looked
            }
            if (FileLockHolder.TryParse(text, out FileLockHolder? holder))
            {
                if (IsRunning(holder.ProcessId, holder.Since))
                {
                    holders.Add(holder);
                    continue;
                }
                AtomicFile.TryDelete(record);
            }
        }
        holders.Sort((a, b) => a.Since.CompareTo(b.Since));
        return holders;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_record is not null)
        {
            AtomicFile.TryDelete(_record);
        }
        _stream.Dispose();
    }

    /// <summary>The holders that keep a lock of this kind from being taken: every holder for an exclusive lock, exclusive ones for a shared lock.</summary>
    private static IReadOnlyList<FileLockHolder> Blocking(string path, bool exclusive)
    {
        IReadOnlyList<FileLockHolder> holders = ReadHolders(path);
        if (exclusive)
        {
            return holders;
        }
        var writers = holders.Where(h => h.Exclusive).ToList();
        return writers.Count > 0 ? writers : holders;
    }

    /// <summary>Records this process as a holder; null when the record cannot be written (the lock holds all the same).</summary>
    private static string? WriteRecord(string path, bool exclusive)
    {
        string record = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{HolderSuffix}";
        var holder = new FileLockHolder(Environment.ProcessId, CurrentHolder, exclusive, DateTimeOffset.UtcNow);
        try
        {
            File.WriteAllText(record, holder.ToLine());
            return record;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string DefaultHolder() =>
        Path.GetFileNameWithoutExtension(Environment.ProcessPath) is { Length: > 0 } name ? name : "a process";

    /// <summary>Whether <paramref name="pid"/> runs and started no later than its record (a reused pid is not the holder).</summary>
    internal static bool IsRunning(int pid, DateTimeOffset since)
    {
        if (pid == Environment.ProcessId)
        {
            return true;
        }
        try
        {
            using Process process = Process.GetProcessById(pid);
            return !process.HasExited && process.StartTime.ToUniversalTime() <= since.UtcDateTime.AddSeconds(1);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return false;
        }
    }

    private sealed class Scope(string holder, Action<FileLockWait>? onWait, Action<string>? onNotice, Scope? outer) : IDisposable
    {
        public string Holder { get; } = holder;

        public Action<FileLockWait>? OnWait { get; } = onWait;

        public Action<string>? OnNotice { get; } = onNotice;

        public void Dispose() => s_scope.Value = outer;
    }
}

/// <summary>A process recorded as holding a lock.</summary>
/// <param name="ProcessId">Its process id.</param>
/// <param name="Holder">What it is (a verb such as <c>compress</c>).</param>
/// <param name="Exclusive">Whether it holds the lock exclusively.</param>
/// <param name="Since">When it took the lock.</param>
internal sealed record FileLockHolder(int ProcessId, string Holder, bool Exclusive, DateTimeOffset Since)
{
    /// <summary>"compress (pid 1234) since 20:31:05", the time in the local time zone.</summary>
    public override string ToString() =>
        $"{Holder} (pid {ProcessId}) since {Since.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture)}";

    internal string ToLine() =>
        string.Create(CultureInfo.InvariantCulture, $"{ProcessId} {(Exclusive ? "exclusive" : "shared")} {Since.UtcDateTime:O} {Holder}\n");

    internal static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FileLockHolder? holder)
    {
        holder = null;
        string[] parts = text.TrimEnd('\n').Split(' ', 4);
        if (parts.Length != 4 || parts[3].Length == 0
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
            || parts[1] is not ("shared" or "exclusive")
            || !DateTimeOffset.TryParse(parts[2], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset since))
        {
            return false; // half-written, or not ours
        }
        holder = new FileLockHolder(pid, parts[3], parts[1] == "exclusive", since);
        return true;
    }
}

/// <summary>A lock that was not free at once, and who holds it.</summary>
/// <param name="Path">The lock file (or, for a lock of leases in a bucket, the URL of its folder of leases, ending in <c>/</c>).</param>
/// <param name="Exclusive">Whether the lock is wanted exclusively.</param>
/// <param name="Holders">The recorded holders that keep it (empty when none has said).</param>
internal sealed record FileLockWait(string Path, bool Exclusive, IReadOnlyList<FileLockHolder> Holders)
{
    /// <summary>The lock's name: its file name without <c>.lock</c> (<c>store</c>, <c>model.org@name</c>).</summary>
    public string LockName => System.IO.Path.GetFileName(Path.TrimEnd('/')) is var name && name.EndsWith(".lock", StringComparison.Ordinal) ? name[..^5] : name;

    /// <summary>The holders, as a person reads them: "compress (pid 1234) since 20:31:05, ...".</summary>
    public string DescribeHolders() => Describe(Holders);

    internal static string Describe(IReadOnlyList<FileLockHolder> holders) =>
        holders.Count == 0 ? "another process (it left no record of itself)" : string.Join(", ", holders);
}
