using System.Buffers.Binary;
using System.Text;

namespace ZipLlm.Mount.Fuse;

// The wire structs of the kernel's FUSE protocol, as linux/fuse.h (libfuse's fuse_kernel.h) lays them out: little
// endian, naturally aligned, no packing. Each is one type with its size, its fields' offsets, and a Read or a Write
// (requests are read, replies written), so the layout is written down once. Protocol 7.x; fields added after 7.31
// are left zero.

/// <summary><c>struct fuse_in_header</c>: what precedes every request.</summary>
internal readonly record struct FuseInHeader(uint Length, FuseOpcode Opcode, ulong Unique, ulong NodeId, uint Uid, uint Gid, uint Pid)
{
    public const int Size = 40;
    public const int LengthOffset = 0, OpcodeOffset = 4, UniqueOffset = 8, NodeIdOffset = 16, UidOffset = 24, GidOffset = 28, PidOffset = 32;

    /// <exception cref="InvalidDataException">The request is shorter than its header, or its length field disagrees with what was read.</exception>
    public static FuseInHeader Read(ReadOnlySpan<byte> request)
    {
        if (request.Length < Size)
        {
            throw new InvalidDataException($"A FUSE request of {request.Length} bytes is shorter than its {Size}-byte header.");
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(request[LengthOffset..]);
        if (length != request.Length)
        {
            throw new InvalidDataException($"A FUSE request says it is {length} bytes; {request.Length} were read.");
        }
        return new FuseInHeader(length, (FuseOpcode)BinaryPrimitives.ReadUInt32LittleEndian(request[OpcodeOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(request[UniqueOffset..]), BinaryPrimitives.ReadUInt64LittleEndian(request[NodeIdOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(request[UidOffset..]), BinaryPrimitives.ReadUInt32LittleEndian(request[GidOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(request[PidOffset..]));
    }
}

/// <summary><c>struct fuse_out_header</c>: what precedes every reply; <c>error</c> is a negated errno or 0.</summary>
internal static class FuseOutHeader
{
    public const int Size = 16;
    public const int LengthOffset = 0, ErrorOffset = 4, UniqueOffset = 8;

    public static void Write(Span<byte> reply, int length, int error, ulong unique)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(reply[LengthOffset..], checked((uint)length));
        BinaryPrimitives.WriteInt32LittleEndian(reply[ErrorOffset..], error);
        BinaryPrimitives.WriteUInt64LittleEndian(reply[UniqueOffset..], unique);
    }
}

/// <summary><c>struct fuse_init_in</c>: the kernel's protocol version and what it offers (flags2 from 7.36).</summary>
internal readonly record struct FuseInitIn(uint Major, uint Minor, uint MaxReadahead, ulong Flags)
{
    /// <summary>The part every kernel sends (7.6 and later).</summary>
    public const int MinimumSize = 16;
    public const int MajorOffset = 0, MinorOffset = 4, MaxReadaheadOffset = 8, FlagsOffset = 12, Flags2Offset = 16;

    /// <exception cref="InvalidDataException">The body is too short.</exception>
    public static FuseInitIn Read(ReadOnlySpan<byte> body)
    {
        FuseBody.Require(body, MinimumSize, "INIT");
        ulong flags = BinaryPrimitives.ReadUInt32LittleEndian(body[FlagsOffset..]);
        if (body.Length >= Flags2Offset + 4 && (flags & FuseInitFlags.InitExt) != 0)
        {
            flags |= (ulong)BinaryPrimitives.ReadUInt32LittleEndian(body[Flags2Offset..]) << 32;
        }
        return new FuseInitIn(BinaryPrimitives.ReadUInt32LittleEndian(body[MajorOffset..]), BinaryPrimitives.ReadUInt32LittleEndian(body[MinorOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(body[MaxReadaheadOffset..]), flags);
    }
}

/// <summary>The <c>FUSE_*</c> capability flags of INIT (bits 32 and up travel in <c>flags2</c>).</summary>
internal static class FuseInitFlags
{
    public const ulong AsyncRead = 1 << 0;
    public const ulong BigWrites = 1 << 5;
    public const ulong AutoInvalData = 1 << 12;
    public const ulong ParallelDirOps = 1 << 18;
    public const ulong MaxPages = 1 << 22;
    public const ulong InitExt = 1 << 30;
}

/// <summary><c>struct fuse_init_out</c>: the version and capabilities the file system takes.</summary>
internal readonly record struct FuseInitOut(uint Major, uint Minor, uint MaxReadahead, ulong Flags, ushort MaxBackground, ushort CongestionThreshold,
    uint MaxWrite, uint TimeGranularity, ushort MaxPages)
{
    public const int Size = 64;
    public const int MajorOffset = 0, MinorOffset = 4, MaxReadaheadOffset = 8, FlagsOffset = 12, MaxBackgroundOffset = 16,
        CongestionThresholdOffset = 18, MaxWriteOffset = 20, TimeGranularityOffset = 24, MaxPagesOffset = 28, MapAlignmentOffset = 30, Flags2Offset = 32;

    public void Write(Span<byte> body)
    {
        body[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(body[MajorOffset..], Major);
        BinaryPrimitives.WriteUInt32LittleEndian(body[MinorOffset..], Minor);
        BinaryPrimitives.WriteUInt32LittleEndian(body[MaxReadaheadOffset..], MaxReadahead);
        BinaryPrimitives.WriteUInt32LittleEndian(body[FlagsOffset..], (uint)Flags);
        BinaryPrimitives.WriteUInt16LittleEndian(body[MaxBackgroundOffset..], MaxBackground);
        BinaryPrimitives.WriteUInt16LittleEndian(body[CongestionThresholdOffset..], CongestionThreshold);
        BinaryPrimitives.WriteUInt32LittleEndian(body[MaxWriteOffset..], MaxWrite);
        BinaryPrimitives.WriteUInt32LittleEndian(body[TimeGranularityOffset..], TimeGranularity);
        BinaryPrimitives.WriteUInt16LittleEndian(body[MaxPagesOffset..], MaxPages);
        BinaryPrimitives.WriteUInt32LittleEndian(body[Flags2Offset..], (uint)(Flags >> 32));
    }
}

/// <summary><c>struct fuse_attr</c>: a node's attributes, as <c>stat</c> shows them.</summary>
internal static class FuseAttr
{
    public const int Size = 88;
    public const int InoOffset = 0, SizeOffset = 8, BlocksOffset = 16, AtimeOffset = 24, MtimeOffset = 32, CtimeOffset = 40,
        AtimeNsecOffset = 48, MtimeNsecOffset = 52, CtimeNsecOffset = 56, ModeOffset = 60, NlinkOffset = 64, UidOffset = 68, GidOffset = 72,
        RdevOffset = 76, BlksizeOffset = 80, FlagsOffset = 84;

    /// <summary>The block size <c>st_blksize</c> reports: 1 MiB, so <c>cp</c> and <c>cat</c> read in large requests.</summary>
    public const uint BlockSize = 1 << 20;

    public static void Write(Span<byte> body, in FuseAttributes attributes)
    {
        body[..Size].Clear();
        long seconds = attributes.ModifiedAt.ToUnixTimeSeconds();
        uint nanoseconds = (uint)((attributes.ModifiedAt.UtcTicks % TimeSpan.TicksPerSecond) * 100);
        BinaryPrimitives.WriteUInt64LittleEndian(body[InoOffset..], attributes.Inode);
        BinaryPrimitives.WriteUInt64LittleEndian(body[SizeOffset..], checked((ulong)attributes.Size));
        // st_blocks counts 512-byte units.
        BinaryPrimitives.WriteUInt64LittleEndian(body[BlocksOffset..], (ulong)((attributes.Size + 511) / 512));
        foreach (int offset in (ReadOnlySpan<int>)[AtimeOffset, MtimeOffset, CtimeOffset])
        {
            BinaryPrimitives.WriteInt64LittleEndian(body[offset..], seconds);
        }
        foreach (int offset in (ReadOnlySpan<int>)[AtimeNsecOffset, MtimeNsecOffset, CtimeNsecOffset])
        {
            BinaryPrimitives.WriteUInt32LittleEndian(body[offset..], nanoseconds);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(body[ModeOffset..], attributes.Mode);
        BinaryPrimitives.WriteUInt32LittleEndian(body[NlinkOffset..], attributes.Links);
        BinaryPrimitives.WriteUInt32LittleEndian(body[UidOffset..], attributes.Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(body[GidOffset..], attributes.Gid);
        BinaryPrimitives.WriteUInt32LittleEndian(body[BlksizeOffset..], BlockSize);
    }
}

/// <summary>How long the kernel may keep what a reply says (entries, attributes) before asking again.</summary>
internal readonly record struct FuseValidity(ulong Seconds, uint Nanoseconds)
{
    public static FuseValidity From(TimeSpan span) =>
        new((ulong)span.Ticks / TimeSpan.TicksPerSecond, (uint)(span.Ticks % TimeSpan.TicksPerSecond * 100));
}

/// <summary><c>struct fuse_entry_out</c>: the answer to LOOKUP.</summary>
internal static class FuseEntryOut
{
    public const int Size = 40 + FuseAttr.Size;
    public const int NodeIdOffset = 0, GenerationOffset = 8, EntryValidOffset = 16, AttrValidOffset = 24, EntryValidNsecOffset = 32,
        AttrValidNsecOffset = 36, AttrOffset = 40;

    public static void Write(Span<byte> body, in FuseAttributes attributes, FuseValidity entryValid, FuseValidity attrValid)
    {
        body[..Size].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(body[NodeIdOffset..], attributes.Inode);
        BinaryPrimitives.WriteUInt64LittleEndian(body[EntryValidOffset..], entryValid.Seconds);
        BinaryPrimitives.WriteUInt64LittleEndian(body[AttrValidOffset..], attrValid.Seconds);
        BinaryPrimitives.WriteUInt32LittleEndian(body[EntryValidNsecOffset..], entryValid.Nanoseconds);
        BinaryPrimitives.WriteUInt32LittleEndian(body[AttrValidNsecOffset..], attrValid.Nanoseconds);
        FuseAttr.Write(body[AttrOffset..], attributes);
    }
}

/// <summary><c>struct fuse_attr_out</c>: the answer to GETATTR.</summary>
internal static class FuseAttrOut
{
    public const int Size = 16 + FuseAttr.Size;
    public const int AttrValidOffset = 0, AttrValidNsecOffset = 8, AttrOffset = 16;

    public static void Write(Span<byte> body, in FuseAttributes attributes, FuseValidity attrValid)
    {
        body[..Size].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(body[AttrValidOffset..], attrValid.Seconds);
        BinaryPrimitives.WriteUInt32LittleEndian(body[AttrValidNsecOffset..], attrValid.Nanoseconds);
        FuseAttr.Write(body[AttrOffset..], attributes);
    }
}

/// <summary><c>struct fuse_open_in</c>: the <c>open(2)</c> flags.</summary>
internal readonly record struct FuseOpenIn(uint Flags)
{
    public const int Size = 8;
    public const int FlagsOffset = 0;

    public static FuseOpenIn Read(ReadOnlySpan<byte> body)
    {
        FuseBody.Require(body, Size, "OPEN");
        return new FuseOpenIn(BinaryPrimitives.ReadUInt32LittleEndian(body[FlagsOffset..]));
    }
}

/// <summary><c>struct fuse_open_out</c>: the handle and the <c>FOPEN_*</c> flags.</summary>
internal static class FuseOpenOut
{
    public const int Size = 16;
    public const int HandleOffset = 0, OpenFlagsOffset = 8;

    /// <summary>Keep the file's pages in the kernel's cache between opens: a stored file never changes.</summary>
    public const uint KeepCache = 1 << 1;

    public static void Write(Span<byte> body, ulong handle, uint openFlags)
    {
        body[..Size].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(body[HandleOffset..], handle);
        BinaryPrimitives.WriteUInt32LittleEndian(body[OpenFlagsOffset..], openFlags);
    }
}

/// <summary><c>struct fuse_read_in</c>: READ and READDIR.</summary>
internal readonly record struct FuseReadIn(ulong Handle, ulong Offset, uint Size)
{
    public const int WireSize = 40;
    public const int HandleOffset = 0, OffsetOffset = 8, SizeOffset = 16, ReadFlagsOffset = 20, LockOwnerOffset = 24, FlagsOffset = 32;

    public static FuseReadIn Read(ReadOnlySpan<byte> body)
    {
        // Kernels before 7.9 sent 24 bytes; the fields read here are in those.
        FuseBody.Require(body, 24, "READ");
        return new FuseReadIn(BinaryPrimitives.ReadUInt64LittleEndian(body[HandleOffset..]), BinaryPrimitives.ReadUInt64LittleEndian(body[OffsetOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(body[SizeOffset..]));
    }
}

/// <summary><c>struct fuse_release_in</c>: RELEASE and RELEASEDIR.</summary>
internal readonly record struct FuseReleaseIn(ulong Handle)
{
    public const int Size = 24;
    public const int HandleOffset = 0;

    public static FuseReleaseIn Read(ReadOnlySpan<byte> body)
    {
        FuseBody.Require(body, 8, "RELEASE");
        return new FuseReleaseIn(BinaryPrimitives.ReadUInt64LittleEndian(body[HandleOffset..]));
    }
}

/// <summary><c>struct fuse_interrupt_in</c>: which request to give up.</summary>
internal static class FuseInterruptIn
{
    public const int Size = 8;

    public static ulong Read(ReadOnlySpan<byte> body)
    {
        FuseBody.Require(body, Size, "INTERRUPT");
        return BinaryPrimitives.ReadUInt64LittleEndian(body);
    }
}

/// <summary><c>struct fuse_access_in</c>: the <c>access(2)</c> mask (<c>W_OK</c> = 2).</summary>
internal static class FuseAccessIn
{
    public const int Size = 8;
    public const uint WriteMask = 2;

    public static uint Read(ReadOnlySpan<byte> body)
    {
        FuseBody.Require(body, 4, "ACCESS");
        return BinaryPrimitives.ReadUInt32LittleEndian(body);
    }
}

/// <summary><c>struct fuse_getxattr_in</c> (GETXATTR, LISTXATTR: the caller's buffer size) and <c>fuse_getxattr_out</c>.</summary>
internal static class FuseGetXAttr
{
    public const int InSize = 8, OutSize = 8;

    public static uint ReadSize(ReadOnlySpan<byte> body)
    {
        FuseBody.Require(body, 4, "GETXATTR");
        return BinaryPrimitives.ReadUInt32LittleEndian(body);
    }

    public static void WriteOut(Span<byte> body, uint size)
    {
        body[..OutSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(body, size);
    }
}

/// <summary><c>struct fuse_kstatfs</c> (all of <c>fuse_statfs_out</c>).</summary>
internal static class FuseStatFsOut
{
    public const int Size = 80;
    public const int BlocksOffset = 0, BfreeOffset = 8, BavailOffset = 16, FilesOffset = 24, FfreeOffset = 32, BsizeOffset = 40,
        NamelenOffset = 44, FrsizeOffset = 48;

    public static void Write(Span<byte> body, in FuseFileSystemStats stats)
    {
        body[..Size].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(body[BlocksOffset..], stats.Blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(body[FilesOffset..], stats.Files);
        BinaryPrimitives.WriteUInt32LittleEndian(body[BsizeOffset..], stats.BlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(body[NamelenOffset..], 255);
        BinaryPrimitives.WriteUInt32LittleEndian(body[FrsizeOffset..], stats.BlockSize);
    }
}

/// <summary><c>struct fuse_dirent</c>: one entry of a READDIR reply, padded to 8 bytes.</summary>
internal static class FuseDirent
{
    public const int NameOffset = 24;
    public const int InoOffset = 0, OffOffset = 8, NameLengthOffset = 16, TypeOffset = 20;

    /// <summary><c>DT_DIR</c> and <c>DT_REG</c> (the type is <c>st_mode &gt;&gt; 12</c>).</summary>
    public const uint TypeDirectory = 4, TypeRegular = 8;

    /// <summary>Bytes the entry takes, padding included.</summary>
    public static int SizeOf(int nameBytes) => (NameOffset + nameBytes + 7) & ~7;

    /// <summary>Writes the entry when it fits in <paramref name="destination"/>; returns its size, or 0 when it does not fit.</summary>
    public static int TryWrite(Span<byte> destination, ulong inode, ulong nextOffset, bool directory, string name)
    {
        int nameBytes = Encoding.UTF8.GetByteCount(name);
        int size = SizeOf(nameBytes);
        if (size > destination.Length)
        {
            return 0;
        }
        destination[..size].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(destination[InoOffset..], inode);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[OffOffset..], nextOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[NameLengthOffset..], (uint)nameBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[TypeOffset..], directory ? TypeDirectory : TypeRegular);
        Encoding.UTF8.GetBytes(name, destination[NameOffset..]);
        return size;
    }
}

/// <summary>Name arguments (LOOKUP and the refused ops): NUL-terminated UTF-8.</summary>
internal static class FuseBody
{
    /// <exception cref="InvalidDataException">The body is shorter than <paramref name="size"/>.</exception>
    public static void Require(ReadOnlySpan<byte> body, int size, string what)
    {
        if (body.Length < size)
        {
            throw new InvalidDataException($"A FUSE {what} request's body is {body.Length} bytes, shorter than {size}.");
        }
    }

    /// <exception cref="InvalidDataException">The name has no terminating NUL or is not UTF-8.</exception>
    public static string ReadName(ReadOnlySpan<byte> body)
    {
        int end = body.IndexOf((byte)0);
        if (end < 0)
        {
            throw new InvalidDataException("A FUSE request's name has no terminating NUL.");
        }
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body[..end]);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDataException("A FUSE request's name is not UTF-8.", ex);
        }
    }
}
