using ZipLlm.Domain;

namespace ZipLlm.ApiTests;

/// <summary>Storing and restoring through the public API, each test with a store of its own.</summary>
public sealed class ZipLlmStoreWriteTests : IDisposable
{
    private readonly TestModels _models = new();

    private ZipLlmStore OpenStore() => ZipLlmStore.Open(_models.StoreFolder, new ZipLlmStoreOptions { CreateIfMissing = true, Threads = 2 });

    [Fact]
    public async Task RestoreAsync_Finetune_GivesBackEveryFileBitForBit()
    {
        await using ZipLlmStore store = OpenStore();
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);
        await store.CompressAsync(_models.FinetuneFolder, TestModels.FinetuneId, TestModels.BaseId);
        string output = Path.Combine(_models.Root, "restored");
        var reports = new List<ZipLlmProgress>();

        RestoreSummary summary = await store.RestoreAsync(TestModels.FinetuneId, output, progress: new Collect(reports));

        string[] files = Directory.GetFiles(output, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(output, f)).Order().ToArray();
        Assert.Equal([TestModels.ConfigFile, TestModels.WeightsFile], files);
        foreach (string file in files)
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(_models.FinetuneFolder, file)), File.ReadAllBytes(Path.Combine(output, file)));
        }
        Assert.Equal((TestModels.FinetuneId, 2), (summary.ModelId, summary.Files));
        Assert.Equal(files.Sum(f => new FileInfo(Path.Combine(output, f)).Length), summary.Bytes);
        Assert.NotEmpty(reports);
    }

    [Fact]
    public async Task Role_ModelStoredAlone_IsStandaloneUntilAFinetuneIsStoredAgainstIt()
    {
        await using ZipLlmStore store = OpenStore();
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);
        Assert.Equal(StoredModelRole.Standalone, store.GetModel(TestModels.BaseId).Role);

        await store.CompressAsync(_models.FinetuneFolder, TestModels.FinetuneId, TestModels.BaseId);

        Assert.Equal(StoredModelRole.Base, store.GetModel(TestModels.BaseId).Role);
        Assert.Equal([StoredModelRole.Base, StoredModelRole.Finetune], (await store.ListModelsAsync()).Select(m => m.Role));
    }

    [Fact]
    public async Task DamagedObject_ReadsAndRestoreFail_NamingModelFileAndObject()
    {
        await using ZipLlmStore store = OpenStore();
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);
        // The largest object holds the largest tensor: one byte in its middle flipped, a chunk no longer matches its checksum.
        FileInfo damaged = new DirectoryInfo(Path.Combine(_models.StoreFolder, "objects")).GetFiles("*", SearchOption.AllDirectories).MaxBy(f => f.Length)!;
        using (FileStream file = File.Open(damaged.FullName, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = file.Length / 2;
            int b = file.ReadByte();
            file.Position = file.Length / 2;
            file.WriteByte((byte)(b ^ 0x5A));
        }
        string tensor = _models.BaseTensors.MaxBy(t => t.Bytes.Length)!.Name;

        var read = Assert.Throws<StoreDamageException>(() => store.ReadTensor(TestModels.BaseId, tensor, new byte[store.GetTensorInfo(TestModels.BaseId, tensor).Length]));
        byte[] buffer = new byte[1 << 20];
        var streamed = Assert.Throws<StoreDamageException>(() =>
        {
            using Stream stream = store.OpenFile(TestModels.BaseId, TestModels.WeightsFile);
            while (stream.Read(buffer) > 0)
            {
            }
        });
        var ranged = await Assert.ThrowsAsync<StoreDamageException>(async () =>
        {
            for (long at = 0; await store.ReadFileAsync(TestModels.BaseId, TestModels.WeightsFile, at, buffer) is var n and > 0; at += n)
            {
            }
        });
        string output = Path.Combine(_models.Root, "restored-damaged");
        var restored = await Assert.ThrowsAsync<StoreDamageException>(() => store.RestoreAsync(TestModels.BaseId, output));

        foreach (StoreDamageException ex in new[] { read, streamed, ranged, restored })
        {
            Assert.Contains(TestModels.BaseId, ex.Message);
            Assert.Contains(TestModels.WeightsFile, ex.Message);
            Assert.Contains($"object {damaged.Name}", ex.Message);
        }
        Assert.False(File.Exists(Path.Combine(output, TestModels.WeightsFile)), "a damaged model restores nothing");
    }

    [Fact]
    public async Task ReadFileVersionAsync_StoredAgainWithOtherBytes_ThrowsIOExceptionNeverTheNewBytes()
    {
        // No lingering lock: every read takes the store lock afresh and sees the store as it is.
        await using ZipLlmStore store = ZipLlmStore.Open(_models.StoreFolder,
            new ZipLlmStoreOptions { CreateIfMissing = true, Threads = 2, ReadLockLinger = TimeSpan.Zero });
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);
        string listed = store.GetModel(TestModels.BaseId).Files.Single(f => f.Path == TestModels.ConfigFile).Sha256;
        byte[] before = File.ReadAllBytes(Path.Combine(_models.BaseFolder, TestModels.ConfigFile));
        var buffer = new byte[before.Length];
        Assert.Equal(before.Length, await store.ReadFileVersionAsync(TestModels.BaseId, TestModels.ConfigFile, listed, 0, buffer));
        Assert.Equal(before, buffer);

        // Removed (its manifest gone, as remove leaves it) and stored again with other bytes under the same id.
        File.Delete(Path.Combine(_models.StoreFolder, "manifests", TestModels.BaseId + ".json"));
        byte[] after = [.. before];
        after[^2] ^= 0x01;
        File.WriteAllBytes(Path.Combine(_models.BaseFolder, TestModels.ConfigFile), after);
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);

        IOException stale = await Assert.ThrowsAsync<IOException>(() => store.ReadFileVersionAsync(TestModels.BaseId, TestModels.ConfigFile, listed, 0, buffer).AsTask());
        Assert.IsNotType<FileNotFoundException>(stale);
        Assert.Contains(listed, stale.Message);
        Assert.Equal(before, buffer); // nothing of the new version was copied
        string renewed = store.GetModel(TestModels.BaseId).Files.Single(f => f.Path == TestModels.ConfigFile).Sha256;
        Assert.Equal(after.Length, await store.ReadFileVersionAsync(TestModels.BaseId, TestModels.ConfigFile, renewed, 0, buffer));
        Assert.Equal(after, buffer);
    }

    [Fact]
    public async Task RestoreAsync_NotEmptyFolder_RefusesUnlessOverwrite()
    {
        await using ZipLlmStore store = OpenStore();
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);
        string output = Path.Combine(_models.Root, "occupied");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "stray.txt"), "x");

        await Assert.ThrowsAsync<IOException>(() => store.RestoreAsync(TestModels.BaseId, output));
        await store.RestoreAsync(TestModels.BaseId, output, overwrite: true);

        Assert.False(File.Exists(Path.Combine(output, "stray.txt")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_models.BaseFolder, TestModels.WeightsFile)), File.ReadAllBytes(Path.Combine(output, TestModels.WeightsFile)));
    }

    [Fact]
    public async Task RestoreAsync_CancelledMidway_ThrowsAndLeavesNothing()
    {
        await using ZipLlmStore store = OpenStore();
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);
        string output = Path.Combine(_models.Root, "cancelled");
        using var cancel = new CancellationTokenSource();
        // Cancelled from the first progress report, so the restore is under way when it sees the token.
        var progress = new Callback(_ => cancel.Cancel());

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.RestoreAsync(TestModels.BaseId, output, progress: progress, cancellationToken: cancel.Token));

        Assert.True(progress.Calls > 0);
        Assert.Empty(Directory.Exists(output) ? Directory.GetFileSystemEntries(output) : []);
    }

    [Fact]
    public async Task CompressAsync_CancelledMidway_ThrowsAndStoresNothing()
    {
        await using ZipLlmStore store = OpenStore();
        using var cancel = new CancellationTokenSource();
        var progress = new Callback(_ => cancel.Cancel());

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.CompressAsync(_models.BaseFolder, TestModels.BaseId, progress: progress, cancellationToken: cancel.Token));

        Assert.True(progress.Calls > 0);
        Assert.False(store.Contains(TestModels.BaseId));
        Assert.Empty(await store.ListModelsAsync());
        string tmp = Path.Combine(_models.StoreFolder, "tmp");
        Assert.Empty(Directory.Exists(tmp) ? Directory.GetFileSystemEntries(tmp) : []);
        // The store is as usable as before.
        Assert.False((await store.CompressAsync(_models.BaseFolder, TestModels.BaseId)).Skipped);
        Assert.Equal(_models.BaseTensors[0].Bytes, await ReadAsync(store, TestModels.BaseId, "embed"));
    }

    [Fact]
    public async Task CompressAsync_MalformedModel_ThrowsAndStoresNothing()
    {
        await using ZipLlmStore store = OpenStore();
        string folder = Path.Combine(_models.Root, "models", "test_truncated");
        Directory.CreateDirectory(folder);
        byte[] weights = File.ReadAllBytes(Path.Combine(_models.BaseFolder, TestModels.WeightsFile));
        File.WriteAllBytes(Path.Combine(folder, TestModels.WeightsFile), weights[..^100]);

        await Assert.ThrowsAsync<InvalidDataException>(() => store.CompressAsync(folder, "test/truncated"));

        Assert.False(store.Contains("test/truncated"));
    }

    [Fact]
    public async Task CompressAsync_BaseNotStored_IsRefusedNamingItAndStoresNothing()
    {
        await using ZipLlmStore store = OpenStore();

        var refused = await Assert.ThrowsAsync<ModelNotFoundException>(() => store.CompressAsync(_models.FinetuneFolder, TestModels.FinetuneId, TestModels.BaseId));

        Assert.Contains($"The base model {TestModels.BaseId} of {TestModels.FinetuneId} is not in the store", refused.Message);
        Assert.False(store.Contains(TestModels.FinetuneId));
        string objects = Path.Combine(_models.StoreFolder, "objects");
        Assert.Empty(Directory.Exists(objects) ? Directory.GetFiles(objects, "*", SearchOption.AllDirectories) : []);
    }

    [Fact]
    public async Task CompressAsync_BaseEndingTheLongestChain_IsRefusedBeforeAnythingIsWritten()
    {
        await using ZipLlmStore store = OpenStore();
        var random = new Random(99);
        // Each model a finetune of the one before: m0, then m1 on m0 ... m8 on m7, the end of a chain of 8 bases.
        TestTensor[] tensors = [_models.BaseTensors[1]];
        string? previous = null;
        for (int i = 0; i <= 8; i++)
        {
            await store.CompressAsync(_models.Write($"chain_m{i}", tensors, "{}"), $"chain/m{i}", previous);
            previous = $"chain/m{i}";
            tensors = [.. tensors.Select(t => t with { Bytes = TestModels.Nudged(random, t.Bytes) })];
        }
        string folder = _models.Write("chain_m9", tensors, "{}");
        string[] objects = Directory.GetFiles(Path.Combine(_models.StoreFolder, "objects"), "*", SearchOption.AllDirectories);

        var refused = await Assert.ThrowsAsync<ArgumentException>(() => store.CompressAsync(folder, "chain/m9", "chain/m8"));

        Assert.Equal("baseModelId", refused.ParamName);
        Assert.Contains("chain/m8", refused.Message);
        Assert.Contains("chain of 8 bases", refused.Message);
        Assert.False(store.Contains("chain/m9"));
        Assert.Equal(objects, Directory.GetFiles(Path.Combine(_models.StoreFolder, "objects"), "*", SearchOption.AllDirectories));
        // One step up the chain it is taken, and restores.
        await store.CompressAsync(folder, "chain/m9", "chain/m7");
        string output = Path.Combine(_models.Root, "restored-m9");
        await store.RestoreAsync("chain/m9", output);
        Assert.Equal(File.ReadAllBytes(Path.Combine(folder, TestModels.WeightsFile)), File.ReadAllBytes(Path.Combine(output, TestModels.WeightsFile)));
    }

    [Fact]
    public async Task VerifyAsync_IntactStore_ChecksEveryModelAndFindsNothing()
    {
        await using ZipLlmStore store = OpenStore();
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);
        await store.CompressAsync(_models.FinetuneFolder, TestModels.FinetuneId, TestModels.BaseId);
        var reports = new List<ZipLlmProgress>();

        VerifySummary all = await store.VerifyAsync(progress: new Collect(reports));
        VerifySummary one = await store.VerifyAsync(TestModels.FinetuneId);

        Assert.True(all.Intact);
        Assert.Equal([TestModels.BaseId, TestModels.FinetuneId], all.Models.Select(m => m.ModelId));
        Assert.Equal([TestModels.FinetuneId], one.Models.Select(m => m.ModelId));
        Assert.True(one.Intact);
        Assert.NotEmpty(reports);
        await Assert.ThrowsAsync<ModelNotFoundException>(() => store.VerifyAsync("org/not-stored"));
    }

    [Fact]
    public async Task VerifyAsync_DamagedObject_NamesModelAndObjectAndChecksTheOthers()
    {
        await using ZipLlmStore store = OpenStore();
        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId);
        string objects = Path.Combine(_models.StoreFolder, "objects");
        HashSet<string> baseObjects = [.. Directory.GetFiles(objects, "*", SearchOption.AllDirectories)];
        await store.CompressAsync(_models.FinetuneFolder, TestModels.FinetuneId, TestModels.BaseId);
        // The largest object the finetune added, one byte in its middle flipped: only the finetune needs it.
        FileInfo damaged = Directory.GetFiles(objects, "*", SearchOption.AllDirectories).Where(f => !baseObjects.Contains(f))
            .Select(f => new FileInfo(f)).MaxBy(f => f.Length)!;
        using (FileStream file = File.Open(damaged.FullName, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = file.Length / 2;
            int b = file.ReadByte();
            file.Position = file.Length / 2;
            file.WriteByte((byte)(b ^ 0x5A));
        }

        VerifySummary summary = await store.VerifyAsync();

        Assert.False(summary.Intact);
        Assert.Equal(2, summary.Models.Count);
        VerifiedModel bad = Assert.Single(summary.Models, m => !m.Intact);
        Assert.Equal(TestModels.FinetuneId, bad.ModelId);
        Assert.Contains(bad.Problems, p => p.Contains(TestModels.FinetuneId, StringComparison.Ordinal) && p.Contains(damaged.Name, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AsyncMethods_DoTheirWork_OffTheThreadPool()
    {
        // The work of an async call (its files' in-order passes report progress) runs on threads of the store's own:
        // a host such as a web server keeps every thread-pool thread for itself.
        await using ZipLlmStore store = OpenStore();
        var onPool = new List<bool>();
        var record = new Callback(_ =>
        {
            lock (onPool)
            {
                onPool.Add(Thread.CurrentThread.IsThreadPoolThread);
            }
        });

        await store.CompressAsync(_models.BaseFolder, TestModels.BaseId, progress: record);
        await store.CompressAsync(_models.FinetuneFolder, TestModels.FinetuneId, TestModels.BaseId, progress: record);
        await store.RestoreAsync(TestModels.FinetuneId, Path.Combine(_models.Root, "restored"), progress: record);
        await store.VerifyAsync(progress: record);

        Assert.NotEmpty(onPool);
        Assert.DoesNotContain(true, onPool);
    }

    [Fact]
    public async Task Dispose_ThenUse_ThrowsObjectDisposed()
    {
        ZipLlmStore store = OpenStore();
        await store.DisposeAsync();
        store.Dispose();

        Assert.Throws<ObjectDisposedException>(() => store.ListModels());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.ReadFileAsync(TestModels.BaseId, TestModels.WeightsFile, 0, new byte[1]).AsTask());
    }

    private static async Task<byte[]> ReadAsync(ZipLlmStore store, string modelId, string tensor)
    {
        byte[] bytes = new byte[store.GetTensorInfo(modelId, tensor).Length];
        await store.ReadTensorAsync(modelId, tensor, bytes);
        return bytes;
    }

    public void Dispose() => _models.Dispose();

    /// <summary>Collects reports on the reporting thread (Progress&lt;T&gt; would post them later).</summary>
    private sealed class Collect(List<ZipLlmProgress> reports) : IProgress<ZipLlmProgress>
    {
        public void Report(ZipLlmProgress value)
        {
            lock (reports)
            {
                reports.Add(value);
            }
        }
    }

    private sealed class Callback(Action<ZipLlmProgress> action) : IProgress<ZipLlmProgress>
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public void Report(ZipLlmProgress value)
        {
            Interlocked.Increment(ref _calls);
            action(value);
        }
    }
}
