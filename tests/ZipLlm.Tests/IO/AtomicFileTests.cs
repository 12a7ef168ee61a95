using System.Diagnostics;
using ZipLlm.IO;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.IO;

/// <summary>Readers see a file whole or not at all; temporary files never outlive their writer.</summary>
public class AtomicFileTests
{
    [Fact]
    public void WriteAllBytes_ReplacesTheFileWholeAndLeavesNoTemporary()
    {
        using var dir = new TempDir();
        string path = dir.Combine("out", "file.bin");
        string temp = dir.Combine("tmp");
        AtomicFile.WriteAllBytes(path, [1, 2, 3], temp);
        AtomicFile.WriteAllBytes(path, [4, 5], temp);
        Assert.Equal([4, 5], File.ReadAllBytes(path));
        Assert.Empty(Directory.EnumerateFiles(temp));
    }

    [Fact]
    public void Writer_DisposedWithoutCommit_LeavesNeitherTargetNorTemporary()
    {
        using var dir = new TempDir();
        string path = dir.Combine("file.bin");
        File.WriteAllBytes(path, [9]);
        using (var writer = new AtomicFileWriter(path, dir.Combine("tmp")))
        {
            writer.Stream.Write([1, 2, 3]);
            Assert.Single(Directory.EnumerateFiles(dir.Combine("tmp")));
        }
        Assert.Equal([9], File.ReadAllBytes(path));
        Assert.Empty(Directory.EnumerateFiles(dir.Combine("tmp")));
    }

    [Fact]
    public void Writer_WhileWriting_TargetKeepsItsOldContent()
    {
        using var dir = new TempDir();
        string path = dir.Combine("file.bin");
        File.WriteAllBytes(path, [9]);
        using var writer = new AtomicFileWriter(path, dir.Combine("tmp"));
        writer.Stream.Write(new byte[100_000]);
        writer.Stream.Flush();
        Assert.Equal([9], File.ReadAllBytes(path));
        Assert.Equal(100_000, writer.Commit(durable: false));
        Assert.Equal(100_000, new FileInfo(path).Length);
    }

    [Fact]
    public void SweepStale_RemovesTemporariesOfDeadProcessesOnly()
    {
        using var dir = new TempDir();
        string folder = dir.Combine("tmp");
        Directory.CreateDirectory(folder);
        int dead = DeadProcessId();
        string ours = AtomicFile.TempPathFor(dir.Combine("a"), folder);
        string theirs = Path.Combine(folder, $".b.{dead}.{Guid.NewGuid():N}.tmp");
        string notOurs = Path.Combine(folder, "unrelated.txt");
        foreach (string file in new[] { ours, theirs, notOurs })
        {
            File.WriteAllText(file, "x");
        }

        AtomicFile.SweepStale(folder);

        Assert.True(File.Exists(ours));
        Assert.False(File.Exists(theirs));
        Assert.True(File.Exists(notOurs));
    }

    /// <summary>The id of a process that has exited.</summary>
    private static int DeadProcessId()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }
}
