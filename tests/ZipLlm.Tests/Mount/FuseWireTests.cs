using System.Buffers.Binary;
using ZipLlm.Mount.Fuse;

namespace ZipLlm.Tests.Mount;

/// <summary>The wire structs against linux/fuse.h: sizes, offsets, and bytes written where the kernel reads them.</summary>
public sealed class FuseWireTests
{
    [Fact]
    public void Sizes_OfEveryStruct_MatchFuseKernelH()
    {
        // sizeof() of the structs in linux/fuse.h (protocol 7.31 and later).
        Assert.Equal(40, FuseInHeader.Size);
        Assert.Equal(16, FuseOutHeader.Size);
        Assert.Equal(64, FuseInitOut.Size);
        Assert.Equal(88, FuseAttr.Size);
        Assert.Equal(128, FuseEntryOut.Size);
        Assert.Equal(104, FuseAttrOut.Size);
        Assert.Equal(8, FuseOpenIn.Size);
        Assert.Equal(16, FuseOpenOut.Size);
        Assert.Equal(40, FuseReadIn.WireSize);
        Assert.Equal(24, FuseReleaseIn.Size);
        Assert.Equal(80, FuseStatFsOut.Size);
        Assert.Equal(24, FuseDirent.NameOffset);
        Assert.Equal(8, FuseGetXAttr.OutSize);
    }

    [Fact]
    public void InHeader_BytesAtTheirOffsets_AreRead()
    {
        var request = new byte[48];
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(0), 48);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), 15);
        BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(8), 0x1122334455667788);
        BinaryPrimitives.WriteUInt64LittleEndian(request.AsSpan(16), 77);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(24), 1000);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(28), 1001);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(32), 4242);

        FuseInHeader header = FuseInHeader.Read(request);

        Assert.Equal(new FuseInHeader(48, FuseOpcode.Read, 0x1122334455667788, 77, 1000, 1001, 4242), header);
    }

    [Theory]
    [InlineData(39, 39)] // shorter than the header
    [InlineData(48, 40)] // says more than was read
    public void InHeader_LengthThatLies_IsInvalidData(int said, int read)
    {
        var request = new byte[Math.Max(read, 4)];
        BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)said);

        Assert.Throws<InvalidDataException>(() => FuseInHeader.Read(request.AsSpan(0, read)));
    }

    [Fact]
    public void ReadIn_FieldsAtTheirOffsets_AreRead()
    {
        var body = new byte[FuseReadIn.WireSize];
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(0), 9);
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(8), 1L << 40);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(16), 131072);

        Assert.Equal(new FuseReadIn(9, 1UL << 40, 131072), FuseReadIn.Read(body));
        Assert.Throws<InvalidDataException>(() => FuseReadIn.Read(body.AsSpan(0, 23)));
    }

    [Fact]
    public void EntryOut_Attributes_LandWhereTheKernelReadsThem()
    {
        var modified = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234567);
        var attributes = new FuseAttributes(Inode: 42, IsDirectory: false, Size: 1000, Mode: 0x8124, Links: 1, modified, Uid: 7, Gid: 8);
        var body = new byte[FuseEntryOut.Size];

        FuseEntryOut.Write(body, attributes, FuseValidity.From(TimeSpan.FromSeconds(1.5)), FuseValidity.From(TimeSpan.FromSeconds(2)));

        Assert.Equal(42ul, BinaryPrimitives.ReadUInt64LittleEndian(body.AsSpan(0))); // nodeid
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(body.AsSpan(16))); // entry_valid
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(body.AsSpan(24))); // attr_valid
        Assert.Equal(500_000_000u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(32))); // entry_valid_nsec
        Span<byte> attr = body.AsSpan(40);
        Assert.Equal(42ul, BinaryPrimitives.ReadUInt64LittleEndian(attr[0..])); // ino
        Assert.Equal(1000ul, BinaryPrimitives.ReadUInt64LittleEndian(attr[8..])); // size
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(attr[16..])); // blocks of 512
        Assert.Equal(modified.ToUnixTimeSeconds(), BinaryPrimitives.ReadInt64LittleEndian(attr[32..])); // mtime
        Assert.Equal(123_456_700u, BinaryPrimitives.ReadUInt32LittleEndian(attr[52..])); // mtimensec
        Assert.Equal(0x8124u, BinaryPrimitives.ReadUInt32LittleEndian(attr[60..])); // mode
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(attr[64..])); // nlink
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(attr[68..])); // uid
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(attr[72..])); // gid
        Assert.Equal(FuseAttr.BlockSize, BinaryPrimitives.ReadUInt32LittleEndian(attr[80..])); // blksize
    }

    [Fact]
    public void InitOut_MaxPagesAndFlags_LandWhereTheKernelReadsThem()
    {
        var body = new byte[FuseInitOut.Size];
        ulong flags = FuseInitFlags.AsyncRead | FuseInitFlags.MaxPages | (1UL << 33);

        new FuseInitOut(7, 31, 1 << 20, flags, 64, 48, 1 << 20, 1, 256).Write(body);

        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(0)));
        Assert.Equal(31u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4)));
        Assert.Equal(1u << 20, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(8)));
        Assert.Equal((uint)(FuseInitFlags.AsyncRead | FuseInitFlags.MaxPages), BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(12)));
        Assert.Equal(64, BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(16)));
        Assert.Equal(1u << 20, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(20)));
        Assert.Equal(256, BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(28)));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(32))); // flags2: bit 33
    }

    [Fact]
    public void InitIn_Flags2_AreReadOnlyWithInitExt()
    {
        var body = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(0), 7);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), 41);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), 131072);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(12), (uint)FuseInitFlags.AsyncRead);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(16), 5);

        Assert.Equal(FuseInitFlags.AsyncRead, FuseInitIn.Read(body).Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(12), (uint)(FuseInitFlags.AsyncRead | FuseInitFlags.InitExt));
        Assert.Equal(new FuseInitIn(7, 41, 131072, FuseInitFlags.AsyncRead | FuseInitFlags.InitExt | (5UL << 32)), FuseInitIn.Read(body));
    }

    [Fact]
    public void Dirent_Entries_ArePaddedTo8BytesWithTheirFields()
    {
        var page = new byte[64];

        int size = FuseDirent.TryWrite(page, 5, 3, directory: true, "abc");

        Assert.Equal(32, size); // 24 + 3, padded
        Assert.Equal(5ul, BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(0)));
        Assert.Equal(3ul, BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(8)));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(16)));
        Assert.Equal(FuseDirent.TypeDirectory, BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(20)));
        Assert.Equal("abc"u8.ToArray(), page[24..27]);
        Assert.Equal(0, FuseDirent.TryWrite(page.AsSpan(0, 31), 5, 3, directory: false, "abc"));
    }

    [Fact]
    public void StatFsOut_Fields_LandWhereTheKernelReadsThem()
    {
        var body = new byte[FuseStatFsOut.Size];

        FuseStatFsOut.Write(body, new FuseFileSystemStats(100, 7, 4096));

        Assert.Equal(100ul, BinaryPrimitives.ReadUInt64LittleEndian(body.AsSpan(0)));
        Assert.Equal(0ul, BinaryPrimitives.ReadUInt64LittleEndian(body.AsSpan(8)));
        Assert.Equal(7ul, BinaryPrimitives.ReadUInt64LittleEndian(body.AsSpan(24)));
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(40)));
        Assert.Equal(255u, BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(44)));
    }

    [Fact]
    public void ReadName_WithoutNulOrNotUtf8_IsInvalidData()
    {
        Assert.Equal("model", FuseBody.ReadName("model\0"u8));
        Assert.Throws<InvalidDataException>(() => FuseBody.ReadName("model"u8));
        Assert.Throws<InvalidDataException>(() => FuseBody.ReadName([0xFF, 0xFE, 0]));
    }

    [Theory]
    [InlineData(@"/tmp/a\040b", "/tmp/a b")]
    [InlineData(@"/tmp/back\134slash", @"/tmp/back\slash")]
    [InlineData("/plain", "/plain")]
    public void MountInfo_EscapedMountPoint_IsUnescaped(string field, string expected) =>
        Assert.Equal(expected, MountInfo.Unescape(field));
}
