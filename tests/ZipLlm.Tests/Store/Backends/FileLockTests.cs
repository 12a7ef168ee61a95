using ZipLlm.Store.Backends;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store.Backends;

public class FileLockTests
{
    [Fact]
    public void Acquire_Held_RecordsTheHolderUntilReleased()
    {
        using var dir = new TempDir();
        string path = dir.Combine("locks", "store.lock");
        using (FileLock.BeginScope("compress", onWait: null))
        {
            using (FileLock.Acquire(path, exclusive: false, TimeSpan.FromSeconds(5)))
            {
                FileLockHolder holder = Assert.Single(FileLock.ReadHolders(path));
                Assert.Equal(Environment.ProcessId, holder.ProcessId);
                Assert.Equal("compress", holder.Holder);
                Assert.False(holder.Exclusive);
                Assert.StartsWith($"compress (pid {Environment.ProcessId}) since ", holder.ToString());
            }
            Assert.Empty(FileLock.ReadHolders(path));
        }
    }

    [Fact]
    public void ReadHolders_RecordOfADeadProcessOrHalfWritten_IgnoredAndStaleOneDeleted()
    {
        using var dir = new TempDir();
        string path = dir.Combine("locks", "store.lock");
        Directory.CreateDirectory(dir.Combine("locks"));
        // A process that has exited: its pid is not running any more (or is a newer process, started after the record).
        using var exited = System.Diagnostics.Process.Start("true")!;
        exited.WaitForExit();
        string stale = $"{path}.{exited.Id}.0123456789abcdef0123456789abcdef.holder";
        File.WriteAllText(stale, $"{exited.Id} exclusive {DateTime.UtcNow.AddDays(-1):O} remove\n");
        File.WriteAllText($"{path}.1.half.holder", "1 excl");

        Assert.Empty(FileLock.ReadHolders(path));
        Assert.False(File.Exists(stale));
    }

    [Fact]
    public void Acquire_HeldExclusively_ReportsTheWaitOnceNamingTheHolderAndHonoursCancellation()
    {
        using var dir = new TempDir();
        string path = dir.Combine("locks", "store.lock");
        var waits = new List<FileLockWait>();
        using (FileLock.BeginScope("remove", onWait: null))
        using (FileLock.Acquire(path, exclusive: true, TimeSpan.FromSeconds(5)))
        using (var cancellation = new CancellationTokenSource())
        {
            // The wait runs on its own thread so that its scope (and the report) are its own.
            var waiter = Task.Run(() =>
            {
                using (FileLock.BeginScope("restore", wait => { waits.Add(wait); cancellation.CancelAfter(100); }))
                {
                    return FileLock.Acquire(path, exclusive: false, TimeSpan.FromMinutes(1), cancellation.Token);
                }
            });
            Assert.ThrowsAny<OperationCanceledException>(() => waiter.GetAwaiter().GetResult());
        }
        FileLockWait only = Assert.Single(waits);
        Assert.Equal("store", only.LockName);
        Assert.Equal("remove", Assert.Single(only.Holders).Holder);
        Assert.Contains($"remove (pid {Environment.ProcessId})", only.DescribeHolders());
    }

    [Fact]
    public void Acquire_NotFreeInTime_TimeoutNamesTheHolder()
    {
        using var dir = new TempDir();
        string path = dir.Combine("locks", "store.lock");
        using (FileLock.BeginScope("compress", onWait: null))
        using (FileLock.Acquire(path, exclusive: true, TimeSpan.FromSeconds(5)))
        {
            // flock is per open file, so a second open in this process conflicts like another process would.
            var ex = Assert.Throws<TimeoutException>(() => FileLock.Acquire(path, exclusive: true, TimeSpan.FromMilliseconds(50)));
            Assert.Contains($"compress (pid {Environment.ProcessId})", ex.Message);
        }
    }

    [Fact]
    public void Acquire_NoInodeLeftForTheLockFile_ThrowsIOExceptionNamingItAtOnce()
    {
        using var disk = new TmpfsMount(1 << 20, inodes: 64);
        string path = disk.Combine("locks", "model.o@big.lock");
        Directory.CreateDirectory(disk.Combine("locks"));
        Assert.True(disk.UseEveryInode() > 0);

        // ENOSPC is not another holder: before, it was taken for one and waited out the whole timeout.
        var ex = Assert.Throws<IOException>(() => FileLock.Acquire(path, exclusive: true, TimeSpan.FromSeconds(20)));
        Assert.Contains(path, ex.Message);
        Assert.Contains("No space left", ex.Message);
    }
}
