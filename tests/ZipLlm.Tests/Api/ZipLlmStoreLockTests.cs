using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store.Backends;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Api;

/// <summary>The library's reads hold the store lock shared, for their own span and the linger after it, as a remove's or gc's exclusive lock sees it.</summary>
public class ZipLlmStoreLockTests
{
    private static readonly ModelId Model = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);

    private static TempDir StoredFamily()
    {
        var dir = new TempDir();
        CompressJobTests.StoreFamily(dir);
        return dir;
    }

    private static void ReadOneTensor(ZipLlmStore store)
    {
        StoredModelTensor tensor = store.GetModel(Model.ToString()).Tensors.First();
        Assert.Equal(tensor.Length, store.ReadTensor(Model.ToString(), tensor.Name, new byte[tensor.Length]));
    }

    [Fact]
    public async Task OpenFile_StreamReadFromTwoThreadsAtOnce_TheSecondIsToldInsteadOfReadingDamage()
    {
        using TempDir dir = StoredFamily();
        using var store = ZipLlmStore.Open(dir.Combine("store"));
        StoredModelFile file = store.GetModel(Model.ToString()).Files.First(f => f.IsSafetensors);
        using var stream = (StoredFileStream)store.OpenFile(Model.ToString(), file.Path);
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        stream.Reading = () =>
        {
            inside.Set();
            Assert.True(release.Wait(TimeSpan.FromSeconds(30)));
        };
        byte[] first = new byte[4096];
        Task<int> reading = Task.Factory.StartNew(() => stream.Read(first), TaskCreationOptions.LongRunning);
        Assert.True(inside.Wait(TimeSpan.FromSeconds(30)));

        var ex = Assert.Throws<InvalidOperationException>(() => stream.Read(new byte[10]));

        release.Set();
        Assert.Equal(first.Length, await reading);
        stream.Reading = null;
        Assert.Contains("one thread at a time", ex.Message);
        // The first read was not disturbed, and the stream reads on once it is free.
        using Stream again = store.OpenFile(Model.ToString(), file.Path);
        byte[] expected = new byte[4096];
        again.ReadExactly(expected);
        Assert.Equal(expected, first);
        Assert.Equal(10, stream.Read(new byte[10]));
    }

    [Fact]
    public void ReadTensor_WithinTheLinger_KeepsTheLockSoARemoveWaits_AndDisposeLetsItGo()
    {
        using TempDir dir = StoredFamily();
        ModelStore other = ModelStore.Open(dir.Combine("store"), create: false);
        var store = ZipLlmStore.Open(dir.Combine("store"), new ZipLlmStoreOptions { ReadLockLinger = TimeSpan.FromMinutes(10) });

        ReadOneTensor(store);
        ReadOneTensor(store);

        Assert.Throws<TimeoutException>(() => other.Backend.Lock("store", exclusive: true, TimeSpan.FromMilliseconds(100), CancellationToken.None));
        store.Dispose();
        using (other.Backend.Lock("store", exclusive: true, TimeSpan.FromSeconds(10), CancellationToken.None))
        {
        }
    }

    [Fact]
    public async Task ReadTensor_LingerPassed_LetsARemoveInAndTheNextReadWaitsForIt()
    {
        using TempDir dir = StoredFamily();
        ModelStore other = ModelStore.Open(dir.Combine("store"), create: false);
        using var store = ZipLlmStore.Open(dir.Combine("store"), new ZipLlmStoreOptions { ReadLockLinger = TimeSpan.FromMilliseconds(20) });
        ReadOneTensor(store);

        // Bounded, not timed: the exclusive lock is had once the linger has passed with no read.
        Task<StoredModel> read;
        using var waiting = new ManualResetEventSlim();
        using (other.Backend.Lock("store", exclusive: true, TimeSpan.FromSeconds(30), CancellationToken.None))
        {
            read = Task.Run(() =>
            {
                // The store lock says when it waits: no clock is read to see that the read does not go on.
                using (ZipLlm.Store.Backends.FileLock.BeginScope("read", _ => waiting.Set()))
                {
                    ReadOneTensor(store);
                    return store.GetModel(Model.ToString());
                }
            });
            Assert.True(waiting.Wait(TimeSpan.FromSeconds(30)), "the read never waited for the store lock");
            Assert.False(read.IsCompleted, "a read went on under another's exclusive lock");
        }
        Assert.Equal(Model.ToString(), (await read).Id);
    }

    [Fact]
    public void Open_ReadLockLingerOutOfRange_IsRefused()
    {
        using var dir = new TempDir();
        foreach (TimeSpan linger in new[] { TimeSpan.FromMilliseconds(-1), TimeSpan.FromMinutes(11) })
        {
            var refused = Assert.Throws<ArgumentException>(() => ZipLlmStore.Open(dir.Combine("store"), new ZipLlmStoreOptions { ReadLockLinger = linger, CreateIfMissing = true }));
            Assert.Contains("ReadLockLinger", refused.Message);
        }
    }
}
