using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using ZipLlm.Mount.Fuse;
using ZipLlm.Mount.Models;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Mount;

public sealed class ModelFileSystemTests
{
    private static readonly DateTimeOffset s_stored = new(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
    private const ulong Root = IFuseFileSystem.RootInode;

    private readonly FakeModelSource _source = new();
    private readonly FakeTimeProvider _time = new(s_stored.AddDays(1));
    private readonly ListLogger _logger = new();

    private ModelFileSystem Create(long readAhead = 0) => new(_source, _time, _logger, uid: 1234, gid: 567, readAhead: readAhead);

    private static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static async Task<FuseAttributes> WalkAsync(ModelFileSystem fs, string path)
    {
        FuseAttributes node = await fs.GetAttributesAsync(Root, CancellationToken.None);
        foreach (string part in path.Split('/'))
        {
            node = await fs.LookupAsync(node.Inode, part, CancellationToken.None);
        }
        return node;
    }

    private static async Task<string[]> NamesAsync(ModelFileSystem fs, ulong inode) =>
        [.. (await fs.ReadDirectoryAsync(inode, CancellationToken.None)).Select(e => e.Name)];

    [Fact]
    public async Task Listing_OrgsModelsAndFiles_AreFoldersOfTheirPaths()
    {
        _source.Add("org_a/model-1", s_stored, ("config.json", Bytes(10, 1)), ("sub/dir/weights.safetensors", Bytes(3000, 2)));
        _source.Add("org_a/model-2", s_stored.AddHours(1), ("README.md", Bytes(5, 3)));
        _source.Add("zeta/m", s_stored, ("a.bin", Bytes(1, 4)));
        ModelFileSystem fs = Create();

        Assert.Equal(["org_a", "zeta"], await NamesAsync(fs, Root));
        FuseAttributes org = await fs.LookupAsync(Root, "org_a", CancellationToken.None);
        Assert.Equal(["model-1", "model-2"], await NamesAsync(fs, org.Inode));
        FuseAttributes model = await fs.LookupAsync(org.Inode, "model-1", CancellationToken.None);
        Assert.Equal(["config.json", "sub"], await NamesAsync(fs, model.Inode));
        FuseAttributes deep = await WalkAsync(fs, "org_a/model-1/sub/dir/weights.safetensors");
        Assert.False(deep.IsDirectory);
        Assert.Equal(3000, deep.Size);
        IReadOnlyList<FuseDirectoryEntry> entries = await fs.ReadDirectoryAsync(model.Inode, CancellationToken.None);
        Assert.True(entries.Single(e => e.Name == "sub").IsDirectory);
        Assert.False(entries.Single(e => e.Name == "config.json").IsDirectory);
        Assert.Equal((await WalkAsync(fs, "org_a/model-1/config.json")).Inode, entries.Single(e => e.Name == "config.json").Inode);
    }

    [Fact]
    public async Task Attributes_FilesAndFolders_AreReadOnlyOwnedAndTimedByTheirModel()
    {
        _source.Add("org/old", s_stored, ("f", Bytes(7, 1)));
        _source.Add("org/new", s_stored.AddHours(5), ("g", Bytes(9, 2)));
        ModelFileSystem fs = Create();

        FuseAttributes file = await WalkAsync(fs, "org/old/f");
        Assert.Equal(0x8000u | 0x124u, file.Mode); // regular, 0444
        Assert.Equal(1u, file.Links);
        Assert.Equal((1234u, 567u), (file.Uid, file.Gid));
        Assert.Equal(s_stored, file.ModifiedAt);
        FuseAttributes model = await WalkAsync(fs, "org/new");
        Assert.Equal(0x4000u | 0x16Du, model.Mode); // directory, 0555
        Assert.Equal(s_stored.AddHours(5), model.ModifiedAt);
        // An org is as recent as its newest model.
        Assert.Equal(s_stored.AddHours(5), (await WalkAsync(fs, "org")).ModifiedAt);
        Assert.True((await fs.GetAttributesAsync(Root, CancellationToken.None)).IsDirectory);
    }

    [Fact]
    public async Task Inodes_SamePathAfterRefreshes_StaysTheSameAndDistinctFromOthers()
    {
        _source.Add("org/m", s_stored, ("a", Bytes(1, 1)), ("b", Bytes(1, 2)));
        ModelFileSystem fs = Create();
        ulong a = (await WalkAsync(fs, "org/m/a")).Inode, b = (await WalkAsync(fs, "org/m/b")).Inode;
        Assert.NotEqual(a, b);
        Assert.NotEqual(Root, a);

        _source.Remove("org/m");
        _time.Advance(fs.ListingLifetime);
        await Assert.ThrowsAsync<FuseException>(async () => await WalkAsync(fs, "org/m/a"));
        _source.Add("org/m", s_stored, ("b", Bytes(1, 2)), ("a", Bytes(1, 1)));
        _time.Advance(fs.ListingLifetime);

        Assert.Equal(a, (await WalkAsync(fs, "org/m/a")).Inode);
        Assert.Equal(b, (await WalkAsync(fs, "org/m/b")).Inode);
    }

    [Fact]
    public async Task Inodes_FileStoredAgainWithOtherBytes_IsANewInodeAndTheOldOneIsGone()
    {
        _source.Add("org/m", s_stored, ("a", Bytes(10, 1)));
        ModelFileSystem fs = Create();
        ulong old = (await WalkAsync(fs, "org/m/a")).Inode;
        ulong folder = (await WalkAsync(fs, "org/m")).Inode;

        _source.Add("org/m", s_stored.AddHours(1), ("a", Bytes(10, 2)));
        _time.Advance(fs.ListingLifetime);

        ulong renewed = (await WalkAsync(fs, "org/m/a")).Inode;
        Assert.NotEqual(old, renewed);
        Assert.Equal(folder, (await WalkAsync(fs, "org/m")).Inode);
        FuseException stale = await Assert.ThrowsAsync<FuseException>(async () => await fs.GetAttributesAsync(old, CancellationToken.None));
        Assert.Equal(Errno.ENOENT, stale.Number);
    }

    [Fact]
    public async Task Listing_WithinItsLifetime_IsReadOnceThenAgainAfterIt()
    {
        _source.Add("org/m", s_stored, ("a", Bytes(1, 1)));
        ModelFileSystem fs = Create();
        await NamesAsync(fs, Root);
        await WalkAsync(fs, "org/m/a");
        _time.Advance(fs.ListingLifetime - TimeSpan.FromMilliseconds(1));
        _source.Add("org/new", s_stored, ("x", Bytes(1, 1)));
        Assert.Equal(["m"], await NamesAsync(fs, (await WalkAsync(fs, "org")).Inode));
        Assert.Equal(1, _source.Listings);

        _time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal(["m", "new"], await NamesAsync(fs, (await WalkAsync(fs, "org")).Inode));
        Assert.Equal(2, _source.Listings);
    }

    [Fact]
    public async Task Lookup_ModelRemoved_IsENOENTAfterTheListingExpires()
    {
        _source.Add("org/m", s_stored, ("a", Bytes(1, 1)));
        _source.Add("org/keep", s_stored, ("a", Bytes(1, 1)));
        ModelFileSystem fs = Create();
        ulong file = (await WalkAsync(fs, "org/m/a")).Inode;

        _source.Remove("org/m");
        _time.Advance(fs.ListingLifetime);

        FuseException lookup = await Assert.ThrowsAsync<FuseException>(async () => await WalkAsync(fs, "org/m"));
        Assert.Equal(Errno.ENOENT, lookup.Number);
        FuseException getattr = await Assert.ThrowsAsync<FuseException>(async () => await fs.GetAttributesAsync(file, CancellationToken.None));
        Assert.Equal(Errno.ENOENT, getattr.Number);
        Assert.Equal(["keep"], await NamesAsync(fs, (await WalkAsync(fs, "org")).Inode));
    }

    [Fact]
    public async Task Read_AnyOffsetAndLength_CopiesTheFilesBytes()
    {
        byte[] content = Bytes(5000, 9);
        _source.Add("org/m", s_stored, ("w", content));
        ModelFileSystem fs = Create();
        ulong handle = await fs.OpenAsync((await WalkAsync(fs, "org/m/w")).Inode, 0, CancellationToken.None);
        var random = new Random(5);
        for (int i = 0; i < 200; i++)
        {
            int offset = random.Next(0, 5200), length = random.Next(0, 4000);
            var destination = new byte[length];

            int read = await fs.ReadAsync(handle, offset, destination, CancellationToken.None);

            int expected = Math.Clamp(content.Length - offset, 0, length);
            Assert.Equal(expected, read);
            Assert.True(content.AsSpan(Math.Min(offset, content.Length), expected).SequenceEqual(destination.AsSpan(0, read)));
        }
        // Never asked past the end of the file.
        Assert.All(_source.Reads, r => Assert.True(r.Offset + r.Length <= content.Length, $"read {r.Offset}+{r.Length}"));
        fs.Release(handle);
        Assert.Equal(0, fs.OpenFiles);
    }

    [Theory]
    [InlineData(1u)] // O_WRONLY
    [InlineData(2u)] // O_RDWR
    [InlineData(0x200u)] // O_RDONLY | O_TRUNC
    public async Task Open_ForWriting_IsEROFS(uint flags)
    {
        _source.Add("org/m", s_stored, ("w", Bytes(10, 1)));
        ModelFileSystem fs = Create();
        ulong inode = (await WalkAsync(fs, "org/m/w")).Inode;

        FuseException refused = await Assert.ThrowsAsync<FuseException>(async () => await fs.OpenAsync(inode, flags, CancellationToken.None));

        Assert.Equal(Errno.EROFS, refused.Number);
    }

    [Fact]
    public async Task Open_Folder_IsEISDIR()
    {
        _source.Add("org/m", s_stored, ("w", Bytes(10, 1)));
        ModelFileSystem fs = Create();

        FuseException refused = await Assert.ThrowsAsync<FuseException>(async () => await fs.OpenAsync((await WalkAsync(fs, "org/m")).Inode, 0, CancellationToken.None));

        Assert.Equal(Errno.EISDIR, refused.Number);
    }

    [Fact]
    public async Task Read_DamagedChunk_IsEIOAndLogsModelAndFile()
    {
        _source.Add("org/m", s_stored, ("w", Bytes(10, 1)));
        _source.Damaged.Add("org/m/w");
        ModelFileSystem fs = Create();
        ulong handle = await fs.OpenAsync((await WalkAsync(fs, "org/m/w")).Inode, 0, CancellationToken.None);

        FuseException failed = await Assert.ThrowsAsync<FuseException>(async () => await fs.ReadAsync(handle, 0, new byte[10], CancellationToken.None));

        Assert.Equal(Errno.EIO, failed.Number);
        string error = Assert.Single(_logger.Entries, e => e.Level == LogLevel.Error).Message;
        Assert.Contains("org/m", error);
        Assert.Contains("w", error);
        Assert.Contains("object", error);
    }

    [Fact]
    public async Task Read_ModelRemovedWhileOpen_IsENOENT()
    {
        _source.Add("org/m", s_stored, ("w", Bytes(10, 1)));
        ModelFileSystem fs = Create();
        ulong handle = await fs.OpenAsync((await WalkAsync(fs, "org/m/w")).Inode, 0, CancellationToken.None);
        _source.Remove("org/m");

        FuseException failed = await Assert.ThrowsAsync<FuseException>(async () => await fs.ReadAsync(handle, 0, new byte[10], CancellationToken.None));

        Assert.Equal(Errno.ENOENT, failed.Number);
    }

    [Fact]
    public async Task Read_FileStoredAgainWithOtherBytesWhileOpen_IsEIONeverTheNewBytes()
    {
        byte[] old = Bytes(3000, 1);
        _source.Add("org/m", s_stored, ("w", old));
        ModelFileSystem fs = Create(readAhead: 0);
        ulong handle = await fs.OpenAsync((await WalkAsync(fs, "org/m/w")).Inode, 0, CancellationToken.None);
        var first = new byte[1000];
        Assert.Equal(1000, await fs.ReadAsync(handle, 0, first, CancellationToken.None));
        Assert.Equal(old[..1000], first);

        _source.Add("org/m", s_stored.AddHours(1), ("w", Bytes(3000, 2)));

        FuseException failed = await Assert.ThrowsAsync<FuseException>(async () => await fs.ReadAsync(handle, 1000, new byte[1000], CancellationToken.None));
        Assert.Equal(Errno.EIO, failed.Number);
        string error = Assert.Single(_logger.Entries, e => e.Level == LogLevel.Error).Message;
        Assert.Contains("org/m/w", error);
        Assert.Contains("other bytes", error);
    }

    [Fact]
    public async Task Read_UnknownHandle_IsEBADF()
    {
        ModelFileSystem fs = Create();

        FuseException failed = await Assert.ThrowsAsync<FuseException>(async () => await fs.ReadAsync(42, 0, new byte[10], CancellationToken.None));

        Assert.Equal(Errno.EBADF, failed.Number);
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/./b")]
    [InlineData("a//b")]
    public async Task Listing_FilePathNotPlain_IsLeftOutWithAWarning(string path)
    {
        _source.Add("org/m", s_stored, (path, Bytes(3, 1)), ("ok", Bytes(3, 2)));
        ModelFileSystem fs = Create();

        Assert.Equal(["ok"], await NamesAsync(fs, (await WalkAsync(fs, "org/m")).Inode));
        Assert.Contains(_logger.Warnings, w => w.Contains(path, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Listing_FileAndFolderAtOnePath_KeepsTheFirst()
    {
        _source.Add("org/m", s_stored, ("x", Bytes(3, 1)), ("x/y/z", Bytes(3, 2)));
        ModelFileSystem fs = Create();

        Assert.False((await WalkAsync(fs, "org/m/x")).IsDirectory);
        Assert.Single(_logger.Warnings);
    }

    [Fact]
    public async Task Stats_CountTheMountsBytesAndNodes()
    {
        _source.Add("org/m", s_stored, ("a", Bytes(5000, 1)), ("b", Bytes(100, 2)));
        ModelFileSystem fs = Create();

        FuseFileSystemStats stats = await fs.GetStatsAsync(CancellationToken.None);

        Assert.Equal(4096u, stats.BlockSize);
        Assert.Equal(2ul, stats.Blocks); // 5100 bytes in 4096-byte blocks
        Assert.Equal(5ul, stats.Files); // root, org, model, two files
    }

    [Fact]
    public async Task ReadAhead_SequentialReads_AskOnceForEachStrideAheadUpToTheWindow()
    {
        const int mib = 1 << 20;
        _source.Add("org/m", s_stored, ("w", Bytes(20 * mib, 1)));
        ModelFileSystem fs = Create(readAhead: 4 * mib);
        ulong handle = await fs.OpenAsync((await WalkAsync(fs, "org/m/w")).Inode, 0, CancellationToken.None);

        for (int i = 0; i < 3; i++)
        {
            await fs.ReadAsync(handle, (long)i * mib, new byte[mib], CancellationToken.None);
        }

        // Probes are the one-byte reads: from the end of each read to 4 MiB past it, each offset once.
        long[] probes = [.. _source.Reads.Where(r => r.Length == 1).Select(r => r.Offset).Order()];
        Assert.Equal([1L * mib, 2L * mib, 3L * mib, 4L * mib, 5L * mib, 6L * mib], probes);
    }

    [Fact]
    public async Task ReadAhead_RandomReadsOrTurnedOff_AsksForNothingMore()
    {
        const int mib = 1 << 20;
        _source.Add("org/m", s_stored, ("w", Bytes(20 * mib, 1)));
        ModelFileSystem random = Create(readAhead: 4 * mib), off = Create(readAhead: 0);
        ulong randomHandle = await random.OpenAsync((await WalkAsync(random, "org/m/w")).Inode, 0, CancellationToken.None);
        ulong offHandle = await off.OpenAsync((await WalkAsync(off, "org/m/w")).Inode, 0, CancellationToken.None);

        foreach (long offset in new long[] { 7L * mib, 2L * mib + 5, 15L * mib, 9L * mib })
        {
            await random.ReadAsync(randomHandle, offset, new byte[4096], CancellationToken.None);
        }
        for (int i = 0; i < 3; i++)
        {
            await off.ReadAsync(offHandle, (long)i * mib, new byte[mib], CancellationToken.None);
        }

        Assert.DoesNotContain(_source.Reads, r => r.Length == 1);
    }
}
