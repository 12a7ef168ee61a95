using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ZipLlm.Mount.Fuse;

/// <summary>
/// Serves the kernel's FUSE requests on an open <c>/dev/fuse</c> descriptor from an <see cref="IFuseFileSystem"/>: a
/// few threads of its own read requests (one blocking <c>read(2)</c> each), every request is handled asynchronously
/// (many reads in flight at once), and each reply is one <c>write(2)</c>, which the device takes from any thread.
/// Operations that would change anything are refused with <c>EROFS</c>, unknown ones with <c>ENOSYS</c>.
/// </summary>
internal sealed class FuseServer
{
    /// <summary>The protocol this server speaks: 7.31 (max_pages, the 64-byte init reply); newer kernels accept it.</summary>
    public const uint KernelMajor = 7, KernelMinor = 31;

    /// <summary>The largest READ the kernel sends: 1 MiB (<c>max_pages</c> 256 of 4 KiB).</summary>
    public const int MaxRead = 1 << 20;

    private const int PageSize = 4096;
    // The kernel refuses a read(2) of the device into a buffer smaller than a WRITE request could be.
    private const int MaxWrite = 1 << 20;
    private const int RequestBufferSize = MaxWrite + PageSize;
    private static readonly FuseValidity s_validity = FuseValidity.From(TimeSpan.FromSeconds(1));

    private readonly int _fd;
    private readonly IFuseFileSystem _fileSystem;
    private readonly ILogger _logger;
    private readonly int _readers;
    private readonly TaskCompletionSource _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Requests being handled that an INTERRUPT may give up.
    private readonly ConcurrentDictionary<ulong, CancellationTokenSource> _inFlight = new();
    // Open directories: the listing as of OPENDIR, so READDIR's pages agree with each other.
    private readonly ConcurrentDictionary<ulong, IReadOnlyList<FuseDirectoryEntry>> _directories = new();
    private long _nextDirectory;
    private int _running;

    /// <param name="fd">The <c>/dev/fuse</c> descriptor, mounted.</param>
    /// <param name="fileSystem">What to serve.</param>
    /// <param name="logger">Where failures go.</param>
    /// <param name="readers">Threads reading requests.</param>
    public FuseServer(int fd, IFuseFileSystem fileSystem, ILogger logger, int readers = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(readers, 1);
        _fd = fd;
        _fileSystem = fileSystem;
        _logger = logger;
        _readers = readers;
    }

    /// <summary>Completes once the kernel's INIT is answered: the mount is usable.</summary>
    public Task Initialized => _initialized.Task;

    /// <summary>Completes when the kernel ends the connection (the file system was unmounted).</summary>
    public Task Completion => _completion.Task;

    /// <summary>The kernel's read-ahead offer, once INIT came.</summary>
    public uint KernelMaxReadahead { get; private set; }

    /// <summary>Starts the reading threads.</summary>
    public void Start()
    {
        _running = _readers;
        for (int i = 0; i < _readers; i++)
        {
            new Thread(ReadRequests) { IsBackground = true, Name = $"zipllm fuse {i}" }.Start();
        }
    }

    private void ReadRequests()
    {
        byte[] buffer = GC.AllocateUninitializedArray<byte>(RequestBufferSize, pinned: true);
        try
        {
            while (true)
            {
                nint read;
                unsafe
                {
                    fixed (byte* start = buffer)
                    {
                        read = FuseNative.Read(_fd, start, buffer.Length);
                    }
                }
                if (read == 0)
                {
                    // End of file: only a socket stands in for the device so (the tests'); the kernel says ENODEV.
                    return;
                }
                if (read < 0)
                {
                    (int errno, string message) = FuseNative.LastError();
                    // ENOENT: the request was interrupted before it was read; EINTR, EAGAIN: try again.
                    if (errno is Errno.ENOENT or Errno.EINTR or Errno.EAGAIN)
                    {
                        continue;
                    }
                    if (errno != Errno.ENODEV)
                    {
                        _logger.LogError("Reading /dev/fuse failed: {Message}", message);
                    }
                    return;
                }
                if (!Dispatch(buffer.AsSpan(0, (int)read)))
                {
                    return;
                }
            }
        }
        catch (Exception ex)
        {
            _logger.LogCritical(ex, "The FUSE request loop failed: {Message}", ex.Message);
        }
        finally
        {
            if (Interlocked.Decrement(ref _running) == 0)
            {
                _initialized.TrySetException(new IOException("The kernel ended the FUSE connection before it was set up."));
                _completion.TrySetResult();
            }
        }
    }

    /// <summary>Handles one request (synchronously when it is quick, else on its own); false once the connection ends.</summary>
    private bool Dispatch(ReadOnlySpan<byte> request)
    {
        FuseInHeader header;
        try
        {
            header = FuseInHeader.Read(request);
        }
        catch (InvalidDataException ex)
        {
            _logger.LogError("Ignored a malformed FUSE request: {Message}", ex.Message);
            return true;
        }
        ReadOnlySpan<byte> body = request[FuseInHeader.Size..];
        try
        {
            switch (header.Opcode)
            {
                case FuseOpcode.Init:
                    ReplyInit(header, FuseInitIn.Read(body));
                    return true;
                case FuseOpcode.Destroy:
                    Reply(header.Unique, 0, []);
                    return false;
                case FuseOpcode.Forget or FuseOpcode.BatchForget:
                    // Inodes stay valid for as long as the mount: nothing to forget, and no reply.
                    return true;
                case FuseOpcode.Interrupt:
                    if (_inFlight.TryGetValue(FuseInterruptIn.Read(body), out CancellationTokenSource? cancellation))
                    {
                        try
                        {
                            cancellation.Cancel();
                        }
                        catch (ObjectDisposedException)
                        {
                            // Answered meanwhile.
                        }
                    }
                    return true;
                case FuseOpcode.SetAttr or FuseOpcode.Symlink or FuseOpcode.MkNod or FuseOpcode.MkDir or FuseOpcode.Unlink or FuseOpcode.RmDir
                    or FuseOpcode.Rename or FuseOpcode.Link or FuseOpcode.Write or FuseOpcode.SetXAttr or FuseOpcode.RemoveXAttr or FuseOpcode.Create
                    or FuseOpcode.FAllocate or FuseOpcode.Rename2 or FuseOpcode.CopyFileRange or FuseOpcode.TmpFile:
                    ReplyError(header.Unique, Errno.EROFS);
                    return true;
                case FuseOpcode.Flush or FuseOpcode.FSync or FuseOpcode.FSyncDir or FuseOpcode.SyncFs:
                    // Nothing is ever written, so there is nothing to flush.
                    Reply(header.Unique, 0, []);
                    return true;
                case FuseOpcode.Access:
                    ReplyError(header.Unique, (FuseAccessIn.Read(body) & FuseAccessIn.WriteMask) != 0 ? Errno.EROFS : 0);
                    return true;
                case FuseOpcode.GetXAttr:
                    FuseGetXAttr.ReadSize(body);
                    ReplyError(header.Unique, Errno.ENODATA);
                    return true;
                case FuseOpcode.ListXAttr:
                    ReplyListXAttr(header.Unique, FuseGetXAttr.ReadSize(body));
                    return true;
                case FuseOpcode.ReleaseDir:
                    _directories.TryRemove(FuseReleaseIn.Read(body).Handle, out _);
                    Reply(header.Unique, 0, []);
                    return true;
                case FuseOpcode.Release:
                    _fileSystem.Release(FuseReleaseIn.Read(body).Handle);
                    Reply(header.Unique, 0, []);
                    return true;
                case FuseOpcode.ReadDir:
                    ReplyReadDir(header.Unique, FuseReadIn.Read(body));
                    return true;
                case FuseOpcode.Lookup or FuseOpcode.GetAttr or FuseOpcode.OpenDir or FuseOpcode.Open or FuseOpcode.Read or FuseOpcode.StatFs:
                    _ = HandleAsync(header, CopyBody(body), body.Length);
                    return true;
                default:
                    ReplyError(header.Unique, Errno.ENOSYS);
                    return true;
            }
        }
        catch (InvalidDataException ex)
        {
            _logger.LogError("Refused a malformed FUSE {Opcode} request: {Message}", header.Opcode, ex.Message);
            ReplyError(header.Unique, Errno.EINVAL);
            return true;
        }
    }

    private static IMemoryOwner<byte> CopyBody(ReadOnlySpan<byte> body)
    {
        IMemoryOwner<byte> copy = MemoryPool<byte>.Shared.Rent(Math.Max(body.Length, 1));
        body.CopyTo(copy.Memory.Span);
        return copy;
    }

    /// <summary>The operations that ask the file system, which may wait for the store: one task each, answered once.</summary>
    private async Task HandleAsync(FuseInHeader header, IMemoryOwner<byte> bodyOwner, int bodyLength)
    {
        using IMemoryOwner<byte> owned = bodyOwner;
        using var cancellation = new CancellationTokenSource();
        _inFlight[header.Unique] = cancellation;
        try
        {
            ReadOnlyMemory<byte> body = owned.Memory[..bodyLength];
            switch (header.Opcode)
            {
                case FuseOpcode.Lookup:
                {
                    FuseAttributes entry = await _fileSystem.LookupAsync(header.NodeId, FuseBody.ReadName(body.Span), cancellation.Token).ConfigureAwait(false);
                    ReplyWith(header.Unique, FuseEntryOut.Size, span => FuseEntryOut.Write(span, entry, s_validity, s_validity));
                    break;
                }
                case FuseOpcode.GetAttr:
                {
                    FuseAttributes attributes = await _fileSystem.GetAttributesAsync(header.NodeId, cancellation.Token).ConfigureAwait(false);
                    ReplyWith(header.Unique, FuseAttrOut.Size, span => FuseAttrOut.Write(span, attributes, s_validity));
                    break;
                }
                case FuseOpcode.OpenDir:
                {
                    IReadOnlyList<FuseDirectoryEntry> entries = await _fileSystem.ReadDirectoryAsync(header.NodeId, cancellation.Token).ConfigureAwait(false);
                    ulong handle = (ulong)Interlocked.Increment(ref _nextDirectory);
                    _directories[handle] = entries;
                    ReplyWith(header.Unique, FuseOpenOut.Size, span => FuseOpenOut.Write(span, handle, 0));
                    break;
                }
                case FuseOpcode.Open:
                {
                    FuseOpenIn open = FuseOpenIn.Read(body.Span);
                    ulong handle = await _fileSystem.OpenAsync(header.NodeId, open.Flags, cancellation.Token).ConfigureAwait(false);
                    ReplyWith(header.Unique, FuseOpenOut.Size, span => FuseOpenOut.Write(span, handle, FuseOpenOut.KeepCache));
                    break;
                }
                case FuseOpcode.Read:
                    await ReplyReadAsync(header.Unique, FuseReadIn.Read(body.Span), cancellation.Token).ConfigureAwait(false);
                    break;
                case FuseOpcode.StatFs:
                {
                    FuseFileSystemStats stats = await _fileSystem.GetStatsAsync(cancellation.Token).ConfigureAwait(false);
                    ReplyWith(header.Unique, FuseStatFsOut.Size, span => FuseStatFsOut.Write(span, stats));
                    break;
                }
            }
        }
        catch (FuseException ex)
        {
            ReplyError(header.Unique, ex.Number);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            ReplyError(header.Unique, Errno.EINTR);
        }
        catch (InvalidDataException ex)
        {
            _logger.LogError("Refused a malformed FUSE {Opcode} request: {Message}", header.Opcode, ex.Message);
            ReplyError(header.Unique, Errno.EINVAL);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "FUSE {Opcode} of inode {Inode} failed: {Message}", header.Opcode, header.NodeId, ex.Message);
            ReplyError(header.Unique, Errno.EIO);
        }
        finally
        {
            _inFlight.TryRemove(header.Unique, out _);
        }
    }

    private async ValueTask ReplyReadAsync(ulong unique, FuseReadIn read, CancellationToken cancellationToken)
    {
        int size = (int)Math.Min(read.Size, (uint)MaxRead);
        if (read.Offset > long.MaxValue)
        {
            throw new FuseException(Errno.EINVAL, $"READ at offset {read.Offset}.");
        }
        byte[] reply = ArrayPool<byte>.Shared.Rent(FuseOutHeader.Size + size);
        try
        {
            int done = await _fileSystem.ReadAsync(read.Handle, (long)read.Offset, reply.AsMemory(FuseOutHeader.Size, size), cancellationToken).ConfigureAwait(false);
            FuseOutHeader.Write(reply, FuseOutHeader.Size + done, 0, unique);
            Send(reply.AsSpan(0, FuseOutHeader.Size + done));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(reply);
        }
    }

    private void ReplyReadDir(ulong unique, FuseReadIn read)
    {
        if (!_directories.TryGetValue(read.Handle, out IReadOnlyList<FuseDirectoryEntry>? entries))
        {
            ReplyError(unique, Errno.EBADF);
            return;
        }
        int size = (int)Math.Min(read.Size, (uint)MaxRead);
        byte[] reply = ArrayPool<byte>.Shared.Rent(FuseOutHeader.Size + size);
        try
        {
            Span<byte> page = reply.AsSpan(FuseOutHeader.Size, size);
            int used = 0;
            // Offsets count entries: "." is 0, ".." is 1, then the directory's own; each entry's off is the next one's.
            for (ulong index = read.Offset; index < (ulong)entries.Count + 2; index++)
            {
                (string name, ulong inode, bool directory) = index switch
                {
                    0 => (".", 0UL, true),
                    1 => ("..", 0UL, true),
                    _ => (entries[(int)(index - 2)].Name, entries[(int)(index - 2)].Inode, entries[(int)(index - 2)].IsDirectory),
                };
                int written = FuseDirent.TryWrite(page[used..], inode == 0 ? IFuseFileSystem.RootInode : inode, index + 1, directory, name);
                if (written == 0)
                {
                    break;
                }
                used += written;
            }
            FuseOutHeader.Write(reply, FuseOutHeader.Size + used, 0, unique);
            Send(reply.AsSpan(0, FuseOutHeader.Size + used));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(reply);
        }
    }

    private void ReplyInit(FuseInHeader header, FuseInitIn init)
    {
        if (init.Major != KernelMajor)
        {
            _logger.LogError("The kernel speaks FUSE {Major}.{Minor}; this build speaks {Ours}.{OurMinor}", init.Major, init.Minor, KernelMajor, KernelMinor);
            ReplyError(header.Unique, Errno.EPROTO);
            _initialized.TrySetException(new IOException($"The kernel speaks FUSE {init.Major}.{init.Minor}; this build speaks {KernelMajor}.{KernelMinor}."));
            return;
        }
        KernelMaxReadahead = init.MaxReadahead;
        ulong wanted = FuseInitFlags.AsyncRead | FuseInitFlags.BigWrites | FuseInitFlags.ParallelDirOps | FuseInitFlags.MaxPages;
        var reply = new FuseInitOut(KernelMajor, Math.Min(KernelMinor, init.Minor), Math.Min(init.MaxReadahead, (uint)MaxRead), wanted & init.Flags,
            MaxBackground: 64, CongestionThreshold: 48, MaxWrite: MaxWrite, TimeGranularity: 1, MaxPages: MaxRead / PageSize);
        _initialized.TrySetResult();
        ReplyWith(header.Unique, FuseInitOut.Size, reply.Write);
    }

    private void ReplyListXAttr(ulong unique, uint size)
    {
        // No extended attributes: a size query gets 0, a list is empty.
        if (size == 0)
        {
            ReplyWith(unique, FuseGetXAttr.OutSize, span => FuseGetXAttr.WriteOut(span, 0));
        }
        else
        {
            Reply(unique, 0, []);
        }
    }

    private void ReplyWith(ulong unique, int bodySize, SpanAction write)
    {
        Span<byte> reply = stackalloc byte[FuseOutHeader.Size + bodySize];
        write(reply[FuseOutHeader.Size..]);
        FuseOutHeader.Write(reply, reply.Length, 0, unique);
        Send(reply);
    }

    private delegate void SpanAction(Span<byte> span);

    private void Reply(ulong unique, int error, ReadOnlySpan<byte> body)
    {
        Span<byte> reply = stackalloc byte[FuseOutHeader.Size + body.Length];
        body.CopyTo(reply[FuseOutHeader.Size..]);
        FuseOutHeader.Write(reply, reply.Length, -error, unique);
        Send(reply);
    }

    private void ReplyError(ulong unique, int errno) => Reply(unique, errno, []);

    private void Send(ReadOnlySpan<byte> reply)
    {
        nint written;
        unsafe
        {
            fixed (byte* start = reply)
            {
                written = FuseNative.Write(_fd, start, reply.Length);
            }
        }
        if (written < 0)
        {
            (int errno, string message) = FuseNative.LastError();
            // ENOENT: the request was interrupted and answered by the kernel; ENODEV: the connection is gone.
            if (errno is not (Errno.ENOENT or Errno.ENODEV))
            {
                _logger.LogError("Writing a FUSE reply failed: {Message}", message);
            }
        }
    }
}
