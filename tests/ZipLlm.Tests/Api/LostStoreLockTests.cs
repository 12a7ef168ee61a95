using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using ZipLlm.Cli;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Session;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Api;

/// <summary>
/// A library reader or a compress whose lease another machine broke while it was paused (issue 24, items 8 and 10),
/// against the real gateway: the other machine removes the model, stores a new version under the same id and collects
/// the garbage. What the paused process then finds missing is a lost lock (exit 4), never damage, and it never reads
/// wrong bytes. Machine A's clock stands still, as a paused process's does while it is paused: its leases are not
/// renewed, and to machine B they go stale after their 2 seconds, while A cannot tell from its own clock (the reads'
/// test then moves it on, as the pause's end does; the compress tests leave it, so only asking the store tells A).
/// </summary>
[Trait("Category", "S3")]
public class LostStoreLockTests
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(2);

    /// <summary>Machine B: the real clock, short leases broken after their time alone.</summary>
    private static StoreSession MachineB(string url) =>
        StoreSession.Open(RgwGateway.Shared.Backend(url, leaseDuration: Lease, hostKey: "machine-b/1"), new StoreSessionOptions { Threads = 2, Create = true });

    /// <summary>Machine A, paused: on <paramref name="time"/>, which stands still until the test moves it.</summary>
    private static ZipLlmStore PausedMachineA(string url, FakeTimeProvider time, int threads = 2) =>
        ZipLlmStore.Open(
            StoreSession.Open(RgwGateway.Shared.Backend(url, leaseDuration: Lease, hostKey: "machine-a/1", time: time), new StoreSessionOptions { Threads = threads, Time = time }),
            new ZipLlmStoreOptions { ReadLockLinger = TimeSpan.FromMinutes(5) });

    private static void Store(StoreSession session, ModelId id, string folder, ModelRole role)
    {
        using IDisposable storeLock = session.LockStore(exclusive: false, CancellationToken.None);
        Assert.False(session.Compress(id, folder, _ => role, null, null, CancellationToken.None).Skipped);
    }

    /// <summary>What machine B does while A is paused: remove <paramref name="id"/>, store <paramref name="next"/> under its id, collect everything unneeded.</summary>
    private static void ReplaceAndCollect(StoreSession b, ModelId id, string next)
    {
        Assert.NotEqual(0, b.Remove(id, CancellationToken.None).Objects); // what only the old version needed is deleted
        Store(b, id, next, ModelRole.Standalone);
        b.CollectGarbage(dryRun: false, TimeSpan.Zero, CancellationToken.None);
    }

    [Fact]
    public async Task Reads_PausedPastTheLeaseWhileTheModelIsReplacedAndCollected_RightBytesOrLostTheLockNeverDamage()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = SyntheticFamily.Generate(dir.Combine("models"), SyntheticSize.Tiny);
        SyntheticModel old = family.Models.First(m => m.Kind == SyntheticModelKind.Base);
        SyntheticModel next = family.Models.First(m => m.Kind == SyntheticModelKind.FarFinetune);
        string url = RgwGateway.NewStoreUrl();
        using StoreSession b = MachineB(url);
        Store(b, old.Id, old.Folder, ModelRole.Standalone);
        string id = old.Id.ToString();

        var time = new FakeTimeProvider();
        using ZipLlmStore a = PausedMachineA(url, time);
        StoredModelFile file = a.GetModel(id).Files.Where(f => f.IsSafetensors).MaxBy(f => f.Length)!;
        byte[] oldBytes = File.ReadAllBytes(Path.Combine(old.Folder, file.Path));
        byte[] newBytes = File.ReadAllBytes(Path.Combine(next.Folder, file.Path));
        Assert.NotEqual(oldBytes, newBytes);
        using Stream stream = a.OpenFile(id, file.Path);
        byte[] start = new byte[4096];
        stream.ReadExactly(start);
        Assert.Equal(oldBytes.AsSpan(0, start.Length).ToArray(), start);
        long middle = oldBytes.Length / 2;
        byte[] range = new byte[4096];
        Assert.Equal(range.Length, await a.ReadFileAsync(id, file.Path, middle, range));
        Assert.Equal(oldBytes.AsSpan((int)middle, range.Length).ToArray(), range);

        ReplaceAndCollect(b, old.Id, next.Folder);
        time.Advance(Lease * 2); // the pause ends: A's clock has moved on with the world's

        // The stream reads on: the bytes of the file it opened, until it meets what the other machine deleted.
        StoreLockLostException? lost = null;
        try
        {
            byte[] piece = new byte[64 << 10];
            for (long at = start.Length; at < oldBytes.Length;)
            {
                int n = stream.Read(piece);
                Assert.True(n > 0);
                Assert.True(oldBytes.AsSpan((int)at, n).SequenceEqual(piece.AsSpan(0, n)), $"the stream gave wrong bytes at {at}");
                at += n;
            }
        }
        catch (StoreLockLostException ex)
        {
            lost = ex;
        }
        Assert.NotNull(lost); // the old version's objects were deleted: the stream did meet them missing
        Assert.Contains("Lost the store lock", lost.Message);

        // Reads that come after take the lock anew and read the manifest again: the model as it is now.
        Assert.Equal(range.Length, await a.ReadFileAsync(id, file.Path, middle, range));
        Assert.Equal(newBytes.AsSpan((int)middle, range.Length).ToArray(), range);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(newBytes)), a.GetModel(id).Files.Single(f => f.Path == file.Path).Sha256);
        await a.RestoreAsync(id, dir.Combine("restored"));
        Assert.Equal(newBytes, File.ReadAllBytes(Path.Combine(dir.Combine("restored"), file.Path)));
    }

    [Fact]
    public async Task Compress_PausedWhileItsBaseIsReplacedAndCollected_LostTheLockExitIoErrorAndNothingListedThatDoesNotRestore()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = SyntheticFamily.Generate(dir.Combine("models"), SyntheticSize.Tiny);
        SyntheticModel baseModel = family.Models.First(m => m.Kind == SyntheticModelKind.Base);
        SyntheticModel finetune = family.Models.First(m => m.Kind == SyntheticModelKind.FullFinetune);
        SyntheticModel next = family.Models.First(m => m.Kind == SyntheticModelKind.FarFinetune);
        string url = RgwGateway.NewStoreUrl();
        using StoreSession b = MachineB(url);
        Store(b, baseModel.Id, baseModel.Folder, ModelRole.Standalone);

        // One thread: held at its first progress report (the first file's header stored, its tensors next), the compress stands still.
        using ZipLlmStore a = PausedMachineA(url, new FakeTimeProvider(), threads: 1);
        using var paused = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        var progress = new HoldingProgress<ZipLlmProgress>(paused, resume);
        Task<CompressSummary> compress = a.CompressAsync(finetune.Folder, finetune.Id.ToString(), baseModel.Id.ToString(), progress);
        Assert.True(paused.Wait(TimeSpan.FromMinutes(2)), "the compress never reported progress");

        ReplaceAndCollect(b, baseModel.Id, next.Folder);
        resume.Set();

        var ex = await Assert.ThrowsAsync<StoreLockLostException>(() => compress.WaitAsync(TimeSpan.FromMinutes(2)));
        Assert.Contains("Lost the store lock", ex.Message);
        Assert.True(ErrorMapping.TryMap(ex, out int exitCode));
        Assert.Equal(ExitCodes.IoError, exitCode);

        AssertEveryListedModelRestores(b, dir, notListed: finetune.Id);
    }

    [Fact]
    public async Task CompressJob_PausedWhileItsBaseIsReplacedAndCollected_StopsTheRunSayingItLostTheLock()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        SyntheticModel baseModel = family.Models.First(m => m.Kind == SyntheticModelKind.Base);
        SyntheticModel finetune = family.Models.First(m => m.Kind == SyntheticModelKind.FullFinetune);
        SyntheticModel chain = family.Models.First(m => m.Kind == SyntheticModelKind.ChainFinetune);
        SyntheticModel next = family.Models.First(m => m.Kind == SyntheticModelKind.FarFinetune);
        string url = RgwGateway.NewStoreUrl();
        using StoreSession b = MachineB(url);
        Store(b, baseModel.Id, baseModel.Folder, ModelRole.Standalone);
        File.WriteAllLines(dir.Combine("run.txt"), [baseModel.Id.ToString(), finetune.Id.ToString(), chain.Id.ToString()]);
        File.WriteAllText(dir.Combine("run.json"),
            $$"""{"model_dir": "models", "storage_dir": "{{url}}", "models_to_process": "run.txt", "base_ft_path": "base_ft.json"}""");

        var time = new FakeTimeProvider();
        using var paused = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        var job = new CompressJob(ZipLlmConfig.Load(dir.Combine("run.json")), NullLogger.Instance)
        {
            Progress = new HoldingProgress<ByteProgress>(paused, resume),
            // Machine A, held at the finetune's first progress report, one file at a time.
            OpenSession = options => StoreSession.Open(RgwGateway.Shared.Backend(url, leaseDuration: Lease, hostKey: "machine-a/1", time: time),
                options with { Threads = 1, Time = time }),
        };
        Task<CompressReport> run = Task.Factory.StartNew(() => job.Run(), TaskCreationOptions.LongRunning);
        Assert.True(paused.Wait(TimeSpan.FromMinutes(2)), "the compress never reported progress");

        ReplaceAndCollect(b, baseModel.Id, next.Folder);
        resume.Set();

        // The run stops there (the chain finetune after it would fail the same way): exit 4, not "the store is damaged".
        var ex = await Assert.ThrowsAsync<StoreLockLostException>(() => run.WaitAsync(TimeSpan.FromMinutes(2)));
        Assert.Contains($"Lost the store lock of {url}", ex.Message);
        Assert.True(ErrorMapping.TryMap(ex, out int exitCode));
        Assert.Equal(ExitCodes.IoError, exitCode);
        AssertEveryListedModelRestores(b, dir, notListed: finetune.Id);
    }

    /// <summary>Nothing listed that does not restore: <paramref name="notListed"/> was not stored on the strength of a broken lease.</summary>
    private static void AssertEveryListedModelRestores(StoreSession b, TempDir dir, ModelId notListed)
    {
        using IDisposable storeLock = b.LockStore(exclusive: false, CancellationToken.None);
        StoreListing listing = b.List();
        Assert.DoesNotContain(listing.Manifests, m => m.Id == notListed);
        Assert.Empty(listing.DamagedManifests);
        foreach (var manifest in listing.Manifests)
        {
            b.Restore(manifest.Id, dir.Combine("restored", manifest.Id.Org, manifest.Id.Name), new RestoreRequest(), null, CancellationToken.None);
        }
        Assert.True(b.Verify(null, null, null, CancellationToken.None).Intact);
    }

    /// <summary>Holds the first report until <paramref name="resume"/> is set, after setting <paramref name="paused"/>.</summary>
    private sealed class HoldingProgress<T>(ManualResetEventSlim paused, ManualResetEventSlim resume) : IProgress<T>
    {
        private int _reports;

        public void Report(T value)
        {
            if (Interlocked.Increment(ref _reports) == 1)
            {
                paused.Set();
                Assert.True(resume.Wait(TimeSpan.FromMinutes(2)), "the test never resumed the compress");
            }
        }
    }
}
