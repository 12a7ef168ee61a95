using System.Diagnostics;
using ZipLlm.IO;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.IO;

public class PosixTests
{
    [Fact]
    public void Lstat_EachKindOfEntry_IsToldApart()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("file"), "abc");
        Directory.CreateDirectory(dir.Combine("folder"));
        File.CreateSymbolicLink(dir.Combine("link"), dir.Combine("file"));
        MakeFifo(dir.Combine("fifo"));

        Assert.Equal(EntryKind.File, Posix.Lstat(dir.Combine("file")).Kind);
        Assert.Equal(3, Posix.Lstat(dir.Combine("file")).Size);
        Assert.Equal(EntryKind.Directory, Posix.Lstat(dir.Combine("folder")).Kind);
        Assert.Equal(EntryKind.SymbolicLink, Posix.Lstat(dir.Combine("link")).Kind);
        Assert.Equal(EntryKind.Other, Posix.Lstat(dir.Combine("fifo")).Kind);
        Assert.Equal(EntryKind.Missing, Posix.Lstat(dir.Combine("nothing")).Kind);
        Assert.Equal(EntryKind.Missing, Posix.Lstat(dir.Combine("file/below")).Kind);
    }

    [Fact]
    public void Lstat_FileRewritten_IsNoLongerTheSameVersion()
    {
        using var dir = new TempDir();
        string path = dir.Combine("file");
        File.WriteAllText(path, "abc");
        EntryStatus before = Posix.Lstat(path);
        Assert.True(before.SameVersionAs(Posix.Lstat(path)));
        Thread.Sleep(20); // file times tick with the kernel's coarse clock
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.Position = 1;
            stream.WriteByte((byte)'x');
        }
        Assert.False(before.SameVersionAs(Posix.Lstat(path)));
    }

    [Fact]
    public void OpenRegularFileForReading_FifoSymlinkOrFolder_IsRefusedWithoutBlocking()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("file"), "abc");
        Directory.CreateDirectory(dir.Combine("folder"));
        File.CreateSymbolicLink(dir.Combine("link"), dir.Combine("file"));
        MakeFifo(dir.Combine("fifo"));

        using (var handle = Posix.OpenRegularFileForReading(dir.Combine("file"), "file"))
        {
            Assert.Equal(3, RandomAccess.GetLength(handle));
        }
        foreach (string name in new[] { "fifo", "link", "folder" })
        {
            var ex = Assert.Throws<InvalidDataException>(() => Posix.OpenRegularFileForReading(dir.Combine(name), name));
            Assert.Contains("not a regular file", ex.Message);
        }
        Assert.Throws<FileNotFoundException>(() => Posix.OpenRegularFileForReading(dir.Combine("nothing"), "nothing"));
    }

    [Fact]
    public void TryLockDirectory_HeldElsewhere_ReturnsNullUntilReleased()
    {
        using var dir = new TempDir();
        string folder = dir.Combine("out");
        Directory.CreateDirectory(folder);
        using (var first = Posix.TryLockDirectory(folder))
        {
            Assert.NotNull(first);
            Assert.Null(Posix.TryLockDirectory(folder));
        }
        using var again = Posix.TryLockDirectory(folder);
        Assert.NotNull(again);
    }

    internal static void MakeFifo(string path)
    {
        using var process = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
