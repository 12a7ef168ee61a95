using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using ZipLlm.Mount.Fuse;
using ZipLlm.Mount.Models;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Mount;

/// <summary>
/// The FUSE server without a kernel: a SOCK_SEQPACKET socket pair stands in for /dev/fuse (one read, one request;
/// one write, one reply; a socket takes messages of about 200 KiB at most, so reads here are smaller than the kernel's),
/// the test plays the kernel, byte by byte as linux/fuse.h lays the requests out.
/// </summary>
public sealed partial class FuseServerTests : IDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);
    private readonly int _kernel, _server;
    private readonly FakeModelSource _source = new();
    private readonly ListLogger _logger = new();
    private readonly FuseServer _fuse;
    private ulong _unique;

    public FuseServerTests()
    {
        var fds = new int[2];
        Assert.Equal(0, socketpair(1 /* AF_UNIX */, 5 /* SOCK_SEQPACKET */, 0, fds));
        (_kernel, _server) = (fds[0], fds[1]);
        _source.Add("org/model", new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), ("weights.bin", Pattern(300_000)), ("sub/config.json", "{}"u8.ToArray()));
        var fs = new ModelFileSystem(_source, new FakeTimeProvider(), _logger, 0, 0);
        _fuse = new FuseServer(_server, fs, _logger, readers: 2);
        _fuse.Start();
    }

    public void Dispose()
    {
        close(_kernel);
        Assert.True(_fuse.Completion.Wait(s_timeout), "the server did not stop at the end of its device");
        close(_server);
    }

    private static byte[] Pattern(int length) => [.. Enumerable.Range(0, length).Select(i => (byte)(i * 31 + (i >> 8)))];

    private ulong Send(FuseOpcode opcode, ulong node, ReadOnlySpan<byte> body)
    {
        ulong unique = ++_unique;
        var request = new byte[FuseInHeader.Size + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(0), (uint)request.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), (uint)opcode);
        BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(8), unique);
        BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(16), node);
        body.CopyTo(request.AsSpan(FuseInHeader.Size));
        Assert.Equal(request.Length, (int)write(_kernel, request, request.Length));
        return unique;
    }

    /// <summary>The next reply: its error (a negated errno) and body; fails when none comes in time.</summary>
    private (int Error, byte[] Body) Receive(ulong unique)
    {
        var pollFd = new PollFd { Fd = _kernel, Events = 1 /* POLLIN */ };
        Assert.True(poll(ref pollFd, 1, (int)s_timeout.TotalMilliseconds) == 1, "no reply in time");
        var reply = new byte[2 << 20];
        int length = (int)read(_kernel, reply, reply.Length);
        Assert.True(length >= FuseOutHeader.Size, $"a reply of {length} bytes");
        Assert.Equal((uint)length, BinaryPrimitives.ReadUInt32LittleEndian(reply));
        Assert.Equal(unique, BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(8)));
        return (BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(4)), reply[FuseOutHeader.Size..length]);
    }

    private (int Error, byte[] Body) Call(FuseOpcode opcode, ulong node, ReadOnlySpan<byte> body) => Receive(Send(opcode, node, body));

    private static byte[] Name(string name) => Encoding.UTF8.GetBytes(name + "\0");

    private static byte[] ReadIn(ulong handle, ulong offset, uint size)
    {
        var body = new byte[FuseReadIn.WireSize];
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(0), handle);
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(8), offset);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(16), size);
        return body;
    }

    private void Init()
    {
        var init = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(init.AsSpan(0), 7);
        BinaryPrimitives.WriteUInt32LittleEndian(init.AsSpan(4), 41);
        BinaryPrimitives.WriteUInt32LittleEndian(init.AsSpan(8), 131072);
        BinaryPrimitives.WriteUInt32LittleEndian(init.AsSpan(12), (uint)(FuseInitFlags.AsyncRead | FuseInitFlags.MaxPages | FuseInitFlags.BigWrites));
        (int error, byte[] body) = Call(FuseOpcode.Init, 0, init);
        Assert.Equal(0, error);
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(0)));
        Assert.Equal(31u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4)));
        Assert.Equal(FuseInitFlags.AsyncRead | FuseInitFlags.MaxPages | FuseInitFlags.BigWrites, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(12)));
        Assert.Equal(256, BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(28))); // max_pages: 1 MiB
        Assert.True(_fuse.Initialized.IsCompletedSuccessfully);
    }

    private ulong Lookup(ulong parent, string name)
    {
        (int error, byte[] body) = Call(FuseOpcode.Lookup, parent, Name(name));
        Assert.Equal(0, error);
        return BinaryPrimitives.ReadUInt64LittleEndian(body);
    }

    [Fact]
    public void Requests_LookupOpenRead_ServeTheFilesBytes()
    {
        Init();
        ulong file = Lookup(Lookup(Lookup(IFuseFileSystem.RootInode, "org"), "model"), "weights.bin");
        (int error, byte[] attr) = Call(FuseOpcode.GetAttr, file, new byte[16]);
        Assert.Equal(0, error);
        Assert.Equal(300_000ul, BinaryPrimitives.ReadUInt64LittleEndian(attr.AsSpan(FuseAttrOut.AttrOffset + FuseAttr.SizeOffset)));

        (error, byte[] open) = Call(FuseOpcode.Open, file, new byte[8]);
        Assert.Equal(0, error);
        Assert.Equal(FuseOpenOut.KeepCache, BinaryPrimitives.ReadUInt32LittleEndian(open.AsSpan(8)));
        ulong handle = BinaryPrimitives.ReadUInt64LittleEndian(open);
        byte[] expected = Pattern(300_000);
        foreach ((ulong offset, uint size) in new[] { (0UL, 65536u), (299_990UL, 4096u), (12345UL, 100_000u), (400_000UL, 4096u) })
        {
            (error, byte[] data) = Call(FuseOpcode.Read, file, ReadIn(handle, offset, size));
            Assert.Equal(0, error);
            Assert.Equal(expected.AsSpan((int)Math.Min(offset, 300_000)).ToArray().Take((int)size), data);
        }
        (error, _) = Call(FuseOpcode.Release, file, new byte[FuseReleaseIn.Size].With(b => BinaryPrimitives.WriteUInt64LittleEndian(b, handle)));
        Assert.Equal(0, error);
    }

    [Fact]
    public void Requests_ReadDir_ListDotDotDotAndEntriesAcrossPages()
    {
        Init();
        ulong model = Lookup(Lookup(IFuseFileSystem.RootInode, "org"), "model");
        (int error, byte[] open) = Call(FuseOpcode.OpenDir, model, new byte[8]);
        Assert.Equal(0, error);
        ulong handle = BinaryPrimitives.ReadUInt64LittleEndian(open);
        var names = new List<string>();
        ulong offset = 0;
        while (true)
        {
            // A page of 40 bytes holds one entry at a time.
            (error, byte[] page) = Call(FuseOpcode.ReadDir, model, ReadIn(handle, offset, 40));
            Assert.Equal(0, error);
            if (page.Length == 0)
            {
                break;
            }
            int nameLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(16));
            names.Add(Encoding.UTF8.GetString(page, FuseDirent.NameOffset, nameLength));
            offset = BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(8));
        }
        Assert.Equal([".", "..", "sub", "weights.bin"], names);
    }

    [Theory]
    [InlineData((uint)FuseOpcode.Write)]
    [InlineData((uint)FuseOpcode.SetAttr)]
    [InlineData((uint)FuseOpcode.Create)]
    [InlineData((uint)FuseOpcode.MkDir)]
    [InlineData((uint)FuseOpcode.Unlink)]
    [InlineData((uint)FuseOpcode.Rename)]
    [InlineData((uint)FuseOpcode.Link)]
    [InlineData((uint)FuseOpcode.Symlink)]
    [InlineData((uint)FuseOpcode.SetXAttr)]
    [InlineData((uint)FuseOpcode.RemoveXAttr)]
    [InlineData((uint)FuseOpcode.FAllocate)]
    public void Requests_ThatWouldWrite_AreEROFS(uint opcode)
    {
        Init();

        Assert.Equal(-Errno.EROFS, Call((FuseOpcode)opcode, IFuseFileSystem.RootInode, new byte[64]).Error);
    }

    [Fact]
    public void Requests_UnknownXAttrMalformedAndForget_GetTheirAnswers()
    {
        Init();
        Assert.Equal(-Errno.ENOSYS, Call((FuseOpcode)4000, IFuseFileSystem.RootInode, []).Error);
        Assert.Equal(-Errno.ENODATA, Call(FuseOpcode.GetXAttr, IFuseFileSystem.RootInode, [.. new byte[8], .. Name("user.x")]).Error);
        (int error, byte[] list) = Call(FuseOpcode.ListXAttr, IFuseFileSystem.RootInode, new byte[8]);
        Assert.Equal((0, 0u), (error, BinaryPrimitives.ReadUInt32LittleEndian(list)));
        Assert.Equal(-Errno.EINVAL, Call(FuseOpcode.Read, IFuseFileSystem.RootInode, new byte[3]).Error);
        Assert.Equal(-Errno.EINVAL, Call(FuseOpcode.Lookup, IFuseFileSystem.RootInode, "no-nul"u8).Error);
        Assert.Equal(-Errno.ENOENT, Call(FuseOpcode.Lookup, IFuseFileSystem.RootInode, Name("nothing")).Error);
        Assert.Equal(-Errno.EROFS, Call(FuseOpcode.Access, IFuseFileSystem.RootInode, [2, 0, 0, 0, 0, 0, 0, 0]).Error);
        Assert.Equal(0, Call(FuseOpcode.Access, IFuseFileSystem.RootInode, [4, 0, 0, 0, 0, 0, 0, 0]).Error);
        // FORGET has no reply: the next reply is the next request's.
        Send(FuseOpcode.Forget, 5, new byte[8]);
        Assert.Equal(0, Call(FuseOpcode.StatFs, IFuseFileSystem.RootInode, []).Error);
    }

    [Fact]
    public void Requests_ReadOfADamagedFile_IsEIO()
    {
        Init();
        _source.Damaged.Add("org/model/weights.bin");
        ulong file = Lookup(Lookup(Lookup(IFuseFileSystem.RootInode, "org"), "model"), "weights.bin");
        ulong handle = BinaryPrimitives.ReadUInt64LittleEndian(Call(FuseOpcode.Open, file, new byte[8]).Body);

        (int error, byte[] data) = Call(FuseOpcode.Read, file, ReadIn(handle, 0, 4096));

        Assert.Equal((-Errno.EIO, 0), (error, data.Length));
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socketpair(int domain, int type, int protocol, [Out] int[] fds);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte[] buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, [Out] byte[] buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(ref PollFd fds, nuint count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}

internal static class ByteArrayExtensions
{
    public static byte[] With(this byte[] bytes, Action<byte[]> fill)
    {
        fill(bytes);
        return bytes;
    }
}
