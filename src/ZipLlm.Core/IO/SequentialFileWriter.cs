using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ZipLlm.IO;

/// <summary>
/// A new file written front to back, through the page cache as usual, or (asked for, and where the system and the file
/// system allow it) in large aligned blocks that bypass it (<c>O_DIRECT</c>): the bytes handed to <see cref="Write"/>
/// are then gathered in a <see cref="StagingBuffer"/> and written whole, and the last block short of the alignment is
/// written through the page cache. Not thread-safe: one writer, in order.
/// </summary>
/// <remarks>
/// Why direct writes: copying a restored model into the page cache was the largest single cost of a restore's CPU (a
/// third or more in a virtual machine, where the fresh page-cache pages fault on the host too); a direct write hands
/// the device the staging buffer and takes no CPU for the copy, and the file does not evict what the machine had
/// cached. Why not by default: the restore then waits for the device, and a quiet machine measured the base's restore
/// slower so (0.19 s against 0.14 s for 267 MB), finetunes even; and a model restored to be loaded at once is read
/// back from the device instead of from memory (bench/README.md, 2026-12-07).
/// </remarks>
internal sealed partial class SequentialFileWriter : IDisposable
{
    /// <summary>The offset and length alignment of a direct write, and of a <see cref="StagingBuffer"/>'s memory: the largest logical block size Linux file systems use here.</summary>
    public const int Alignment = 4096;

    private readonly SafeFileHandle _handle;
    private readonly StagingBuffer? _staging;
    private readonly string _path;
    private int _filled;
    private long _position;
    private bool _direct;

    private SequentialFileWriter(SafeFileHandle handle, StagingBuffer? staging, string path, bool direct)
    {
        _handle = handle;
        _staging = staging;
        _path = path;
        _direct = direct;
    }

    /// <summary>Whether the writes bypass the page cache (false where the system or the file system refused it).</summary>
    public bool Direct => _direct;

    /// <summary>Bytes handed to <see cref="Write"/> so far.</summary>
    public long Length => _position + _filled;

    /// <summary>
    /// Creates <paramref name="path"/>, which must not exist (a symlink there is not followed: the create fails), with
    /// permissions 0666 less the umask; with <paramref name="direct"/>, writes it around the page cache through
    /// <paramref name="staging"/>, which the writer uses until it is disposed.
    /// </summary>
    /// <exception cref="IOException">The file exists or cannot be created.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="direct"/> without a <paramref name="staging"/> buffer (only direct writes use one).</exception>
    public static SequentialFileWriter CreateNew(string path, StagingBuffer? staging, bool direct)
    {
        if (!direct)
        {
            return new SequentialFileWriter(OpenBuffered(path), staging, path, direct: false);
        }
        ArgumentNullException.ThrowIfNull(staging);
        if (DirectFlag() is int flag)
        {
            int fd = OpenNew(path, flag);
            if (fd >= 0)
            {
                return new SequentialFileWriter(new SafeFileHandle(fd, ownsHandle: true), staging, path, direct: true);
            }
            if (Marshal.GetLastPInvokeError() != EInval)
            {
                return new SequentialFileWriter(OpenBuffered(path), staging, path, direct: false); // fails with .NET's own message
            }
        }
        return new SequentialFileWriter(OpenBuffered(path), staging, path, direct: false);
    }

    /// <summary>Appends <paramref name="bytes"/>.</summary>
    /// <exception cref="IOException">The write fails (a full disk, a quota, an I/O error).</exception>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (!_direct && _filled == 0)
        {
            // Through the page cache: no need to gather, the kernel copies anyway.
            RandomAccess.Write(_handle, bytes, _position);
            _position += bytes.Length;
            return;
        }
        Span<byte> buffer = _staging!.Span; // direct writes, or buffered ones after a direct write fell back: a buffer was given
        while (!bytes.IsEmpty)
        {
            int take = Math.Min(bytes.Length, buffer.Length - _filled);
            bytes[..take].CopyTo(buffer[_filled..]);
            _filled += take;
            bytes = bytes[take..];
            if (_filled == buffer.Length)
            {
                Flush(buffer.Length);
            }
        }
    }

    /// <summary>Writes what is still staged; afterwards the file on disk holds every byte written, at its full length.</summary>
    /// <exception cref="IOException">The write fails.</exception>
    public void Complete()
    {
        int aligned = _filled / Alignment * Alignment;
        if (aligned > 0)
        {
            Flush(aligned);
        }
        if (_filled > 0)
        {
            // A direct write covers whole blocks only: the short tail goes through the page cache.
            StopDirect();
            Flush(_filled);
        }
    }

    /// <summary>The file's length on disk now.</summary>
    public long LengthOnDisk => RandomAccess.GetLength(_handle);

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();

    private void Flush(int count)
    {
        ReadOnlySpan<byte> block = _staging!.Span[..count];
        try
        {
            RandomAccess.Write(_handle, block, _position);
        }
        catch (IOException) when (_direct)
        {
            // A file system that took O_DIRECT at open but refuses this write (another alignment): the page cache then.
            StopDirect();
            RandomAccess.Write(_handle, block, _position);
        }
        _position += count;
        _staging!.Span[count.._filled].CopyTo(_staging.Span);
        _filled -= count;
    }

    private void StopDirect()
    {
        if (!_direct)
        {
            return;
        }
        int fd = (int)_handle.DangerousGetHandle();
        int flags = fcntl(fd, FGetFl, 0);
        if (flags < 0 || fcntl(fd, FSetFl, flags & ~DirectFlag()!.Value) < 0)
        {
            throw new IOException($"{_path}: cannot leave direct I/O: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }
        _direct = false;
    }

    private static SafeFileHandle OpenBuffered(string path) =>
        File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);

    private static int OpenNew(string path, int direct)
    {
        int fd;
        do
        {
            fd = open(path, OWrOnly | OCreat | OExcl | OCloExec | direct, DefaultMode);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EIntr);
        return fd;
    }

    /// <summary>O_DIRECT where this process may use it (Linux on x86-64 or arm64, whose values differ), else null.</summary>
    private static int? DirectFlag() =>
        !OperatingSystem.IsLinux() ? null
        : RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 0x4000,
            Architecture.Arm64 => 0x10000,
            _ => null,
        };

    // open(2) and fcntl(2); O_WRONLY, O_CREAT, O_EXCL and O_CLOEXEC are the same on x86-64 and arm64.
    private const int OWrOnly = 1, OCreat = 0x40, OExcl = 0x80, OCloExec = 0x80000;
    private const int DefaultMode = 0x1B6; // 0666, less the umask, as .NET creates files
    private const int FGetFl = 3, FSetFl = 4;
    private const int EIntr = 4, EInval = 22;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);
}

/// <summary>
/// Pinned memory aligned to 2 MiB and advised to huge pages, for a <see cref="SequentialFileWriter"/>: a direct write
/// needs its memory aligned. One writer uses it at a time; its owner hands it to the next writer when one is done.
/// </summary>
internal sealed class StagingBuffer
{
    private const int HugePage = 2 << 20;
    private readonly byte[] _memory;
    private readonly int _start;
    private readonly int _length;

    /// <summary>A buffer of <paramref name="length"/> bytes, a multiple of <see cref="SequentialFileWriter.Alignment"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The length is not positive or not a multiple of the alignment.</exception>
    public unsafe StagingBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        if (length % SequentialFileWriter.Alignment != 0 || length > int.MaxValue - HugePage)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"A staging buffer is a multiple of {SequentialFileWriter.Alignment} bytes.");
        }
        _memory = GC.AllocateUninitializedArray<byte>(length + HugePage, pinned: true);
        _length = length;
        fixed (byte* first = _memory)
        {
            _start = (int)((HugePage - ((nuint)first % HugePage)) % HugePage);
            Posix.AdviseHugePages(first + _start, length);
        }
    }

    /// <summary>The buffer.</summary>
    public Span<byte> Span => _memory.AsSpan(_start, _length);
}
