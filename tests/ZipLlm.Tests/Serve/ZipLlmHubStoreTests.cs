using ZipLlm.Serve;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Serve;

public sealed class ZipLlmHubStoreTests
{
    [Fact]
    public async Task ListModels_StoreChangesWithinLifetime_OldListingUntilItEnds()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.StoreFamily(dir);
        var time = new ManualTime();
        using ZipLlmStore store = ZipLlmStore.Open(dir.Combine("store"), new ZipLlmStoreOptions { ReadLockLinger = TimeSpan.Zero });
        using var hub = new ZipLlmHubStore(store, time, TimeSpan.FromSeconds(2));
        string victim = family.Get(SyntheticModelKind.LoraFinetune).Id.ToString();
        Assert.NotNull(await hub.FindModelAsync(victim, CancellationToken.None));

        CliResult remove = await CliProcess.RunAsync(["remove", dir.Combine("config.json"), victim, "-q"]);
        Assert.True(remove.ExitCode == 0, remove.StandardError);
        time.Advance(TimeSpan.FromSeconds(1.9));
        Assert.NotNull(await hub.FindModelAsync(victim, CancellationToken.None));
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Null(await hub.FindModelAsync(victim, CancellationToken.None));
        Assert.Equal(family.Models.Count - 1, (await hub.ListModelsAsync(CancellationToken.None)).Count);
    }

    [Fact]
    public async Task OpenFile_EveryFile_ReadsTheOriginalBytesAtAnyOffset()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.StoreFamily(dir);
        using ZipLlmStore store = ZipLlmStore.Open(dir.Combine("store"));
        using var hub = new ZipLlmHubStore(store);
        SyntheticModel model = family.Get(SyntheticModelKind.FullFinetune);
        HubModel hubModel = (await hub.FindModelAsync(model.Id.ToString(), CancellationToken.None))!;
        foreach (HubFile file in hubModel.Files)
        {
            byte[] original = File.ReadAllBytes(Path.Combine(model.Folder, file.Path));
            await using IHubFileReader reader = await hub.OpenFileAsync(hubModel, file, CancellationToken.None);
            // Backwards, in odd steps: each read is answered from its own offset.
            var read = new byte[original.Length];
            for (long end = original.Length; end > 0; end -= 777)
            {
                long start = Math.Max(0, end - 777);
                int done = 0;
                while (done < end - start)
                {
                    int n = await reader.ReadAsync(start + done, read.AsMemory((int)start + done, (int)(end - start) - done), CancellationToken.None);
                    Assert.True(n > 0);
                    done += n;
                }
            }
            Assert.Equal(original, read);
            Assert.Equal(0, await reader.ReadAsync(original.Length, new byte[1], CancellationToken.None));
        }
    }

    [Fact]
    public void DerivedCommit_SameFilesAnyOrder_SameIdOtherwiseAnother()
    {
        HubFile a = new("a.json", 3, new string('a', 64), false), b = new("b.safetensors", 9, new string('b', 64), true);
        string commit = ZipLlmHubStore.DerivedCommit([a, b]);
        Assert.Matches("^[0-9a-f]{40}$", commit);
        Assert.Equal(commit, ZipLlmHubStore.DerivedCommit([b, a]));
        Assert.NotEqual(commit, ZipLlmHubStore.DerivedCommit([a, b with { Sha256 = new string('c', 64) }]));
        Assert.NotEqual(commit, ZipLlmHubStore.DerivedCommit([a]));
    }

    [Fact]
    public void ToHub_RecordedCommit_KeptElseDerived()
    {
        var file = new StoredModelFile("config.json", 3, new string('a', 64), false, []);
        var stored = new StoredModel("o/m", StoredModelRole.Standalone, null, [file], 3, 3, DateTimeOffset.UnixEpoch, new string('e', 40));
        Assert.Equal(new string('e', 40), ZipLlmHubStore.ToHub(stored).Commit);
        Assert.Equal(ZipLlmHubStore.DerivedCommit([new HubFile("config.json", 3, new string('a', 64), false)]),
            ZipLlmHubStore.ToHub(stored with { Revision = null }).Commit);
        Assert.NotEqual("main", ZipLlmHubStore.ToHub(stored with { Revision = "main" }).Commit);
    }

    /// <summary>A clock that moves only when told.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }
}
