using System.Runtime.InteropServices;
using ZipLlm.IO;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.IO;

/// <summary>A file written through the page cache's back door holds exactly the bytes written, at their length.</summary>
public class SequentialFileWriterTests
{
    private static bool DirectExpected =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is System.Runtime.InteropServices.Architecture.X64 or System.Runtime.InteropServices.Architecture.Arm64
;

    public static TheoryData<int, bool> Lengths()
    {
        var data = new TheoryData<int, bool>();
        foreach (int length in new[] { 0, 1, 4095, 4096, 4097, 65536, 65537, 3 * 65536 + 4095 })
        {
            data.Add(length, true);
            data.Add(length, false);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Write_AnyLengthInPiecesOfOddSizes_FileHoldsEveryByteAtItsLength(int length, bool direct)
    {
        using var dir = new TempDir();
        string path = dir.Combine("out.bin");
        byte[] data = new byte[length];
        var random = new Random(length);
        random.NextBytes(data);
        using (var writer = SequentialFileWriter.CreateNew(path, new StagingBuffer(65536), direct))
        {
            for (int at = 0; at < length;)
            {
                int piece = Math.Min(length - at, random.Next(1, 20000));
                writer.Write(data.AsSpan(at, piece));
                at += piece;
            }
            writer.Complete();
            Assert.Equal(length, writer.Length);
            Assert.Equal(length, writer.LengthOnDisk);
        }
        Assert.Equal(data, File.ReadAllBytes(path));
    }

    [Fact]
    public void Write_OnThisFileSystem_BypassesThePageCacheUntilTheTail()
    {
        using var dir = new TempDir();
        string path = dir.Combine("out.bin");
        byte[] data = new byte[5 * 4096 + 7];
        new Random(5).NextBytes(data);
        using var writer = SequentialFileWriter.CreateNew(path, new StagingBuffer(2 * 4096), direct: true);
        writer.Write(data);
        // Two full stagings went out direct; what is staged is the rest.
        Assert.Equal(DirectExpected, writer.Direct);
        writer.Complete();
        Assert.False(writer.Direct); // the short tail went through the page cache
        Assert.Equal(data, File.ReadAllBytes(path));
    }

    [Fact]
    public void Write_NotAskedDirect_GoesThroughThePageCache()
    {
        using var dir = new TempDir();
        string path = dir.Combine("out.bin");
        byte[] data = new byte[5 * 4096 + 7];
        new Random(6).NextBytes(data);
        using (var writer = SequentialFileWriter.CreateNew(path, staging: null, direct: false))
        {
            writer.Write(data);
            Assert.False(writer.Direct);
            Assert.Equal(data.Length, writer.LengthOnDisk); // nothing held back in the staging buffer
            writer.Complete();
        }
        Assert.Equal(data, File.ReadAllBytes(path));
    }

    [Fact]
    public void CreateNew_DirectWithoutAStagingBuffer_ThrowsAndCreatesNothing()
    {
        using var dir = new TempDir();
        string path = dir.Combine("out.bin");
        Assert.Throws<ArgumentNullException>(() => SequentialFileWriter.CreateNew(path, staging: null, direct: true));
        Assert.False(File.Exists(path));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void CreateNew_PathTaken_ThrowsAndLeavesWhatIsThere(bool direct)
    {
        using var dir = new TempDir();
        string path = dir.Write("taken.bin", "mine");
        Assert.Throws<IOException>(() => SequentialFileWriter.CreateNew(path, new StagingBuffer(4096), direct));
        Assert.Equal("mine", File.ReadAllText(path));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void CreateNew_SymlinkAtPath_IsNotFollowed(bool direct)
    {
        using var dir = new TempDir();
        string target = dir.Combine("target.bin");
        string link = dir.Combine("link.bin");
        File.CreateSymbolicLink(link, target);
        Assert.Throws<IOException>(() => SequentialFileWriter.CreateNew(link, new StagingBuffer(4096), direct));
        Assert.False(File.Exists(target));
    }

    [Fact]
    public void StagingBuffer_HandedFromWriterToWriter_EachFileHoldsItsOwnBytes()
    {
        using var dir = new TempDir();
        var staging = new StagingBuffer(8192);
        byte[] first = [.. Enumerable.Range(0, 10000).Select(i => (byte)i)];
        byte[] second = [.. Enumerable.Range(0, 3000).Select(i => (byte)(i * 7))];
        foreach ((string name, byte[] bytes) in new[] { ("a", first), ("b", second) })
        {
            using var writer = SequentialFileWriter.CreateNew(dir.Combine(name), staging, direct: true);
            writer.Write(bytes);
            writer.Complete();
        }
        Assert.Equal(first, File.ReadAllBytes(dir.Combine("a")));
        Assert.Equal(second, File.ReadAllBytes(dir.Combine("b")));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4095)]
    public void StagingBuffer_LengthNotWholeBlocks_Throws(int length) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new StagingBuffer(length));
}
