using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.IO;
using ZipLlm.Safetensors;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>Restore and verify never report success for a wrong result and never damage the user's files.</summary>
public class ModelRestorerTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

    [Fact]
    public void Restore_ModelHoldsFilesNamedLikeTemporaries_EveryFileRestored()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), folder =>
        {
            StoredModels.SmallModel(1)(folder);
            File.WriteAllText(Path.Combine(folder, "config.json.zipllm-partial"), "mine");
            File.WriteAllText(Path.Combine(folder, "model.safetensors.zipllm-partial"), "mine too");
            Directory.CreateDirectory(Path.Combine(folder, OutputFolder.StagingPrefix + "0"));
            File.WriteAllText(Path.Combine(folder, OutputFolder.StagingPrefix + "0", "x"), "nested");
        });
        using var pool = new WorkerPool(2, Options);

        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false);

        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_m")), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Equal(StoredModels.Entries(dir.Combine("models", "o_m")), StoredModels.Entries(dir.Combine("out")));
    }

    [Fact]
    public void Restore_DiskFills_IOExceptionNamesTheModelsFileAndLeavesNothing()
    {
        using var dir = new TempDir();
        // One shard of 200 tensors of 1 KiB: about 200 KB, into a file system of 64 KB.
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.ManyTinyTensors(1, 200, elements: 256));
        using var disk = new TmpfsMount(64 << 10, inodes: 256);
        using var pool = new WorkerPool(2, Options);

        var ex = Assert.Throws<IOException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), disk.Combine("out"), force: false));

        // The file being restored is named, not only the staging file it was written to first.
        Assert.Contains("model-00000.safetensors of o/m", ex.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(disk.Combine("out")));
    }

    [Fact]
    public void Restore_TensorObjectSwappedForAnotherValidOne_BlamesThatObjectNotTheHeader()
    {
        using var dir = new TempDir();
        // Two tensors of different lengths, each an object of its own.
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), folder => ModelFolders.WriteSafetensors(Path.Combine(folder, "model.safetensors"),
            [("small", DType.I32, [16L], Enumerable.Range(0, 64).Select(i => (byte)i).ToArray()),
             ("large", DType.I32, [64L], Enumerable.Range(0, 256).Select(i => (byte)(i * 7)).ToArray())]));
        StoredFile file = store.ReadManifest(ModelId.Parse("o/m")).Files.Single(f => f.Path == "model.safetensors");
        ContentHash small = file.Tensors![0].Object, large = file.Tensors[1].Object;
        string PathOf(ContentHash hash) => dir.Combine("store", "objects", hash.Hex[..2], hash.Hex);
        File.Copy(PathOf(large), PathOf(small), overwrite: true); // a valid object, of another tensor, in its place
        using var pool = new WorkerPool(2, Options);

        var ex = Assert.Throws<StoreDamageException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false));

        Assert.Equal(small, ex.Object);
        Assert.NotEqual(file.Object, ex.Object);
        Assert.Contains("tensor \"small\"", ex.Message);
    }

    [Fact]
    public void Restore_CancelledMidway_LeavesNoStagingFolderAndOutputAsItWas()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.ManyTinyTensors(3, 200));
        dir.Write("out/model-00000.safetensors", "old version");
        dir.Write("out/keep/me.txt", "the user's");
        SortedSet<string> before = StoredModels.Entries(dir.Combine("out"));
        using var pool = new WorkerPool(2, Options);
        using var cancel = new CancellationTokenSource();
        var restorer = new ModelRestorer(store, pool) { Progress = new CallbackProgress(_ => cancel.Cancel()) };

        Assert.ThrowsAny<OperationCanceledException>(() => restorer.Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true, cancel.Token));

        Assert.Equal(before, StoredModels.Entries(dir.Combine("out")));
        Assert.Equal("old version", File.ReadAllText(dir.Combine("out", "model-00000.safetensors")));
    }

    [Fact]
    public void Restore_OutputHoldsOnlyAStagingFolderOfAKilledRestore_SweepsItWithoutForce()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(12));
        dir.Write($"out/{OutputFolder.StagingPrefix}4242-{Guid.NewGuid():N}/0", "half a file");
        using var pool = new WorkerPool(2, Options);

        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false);

        Assert.Equal(StoredModels.Entries(dir.Combine("models", "o_m")), StoredModels.Entries(dir.Combine("out")));
    }

    [Fact]
    public void Restore_FailsOnDamage_LeavesNoStagingFolderAndOutputAsItWas()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(2));
        StoredModels.Damage(StoredModels.TensorObject(store, ModelId.Parse("o/m")).Path, "zeros");
        dir.Write("out/config.json", "old");
        using var pool = new WorkerPool(2, Options);

        Assert.Throws<StoreDamageException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true));

        Assert.Equal(["config.json"], StoredModels.Entries(dir.Combine("out")));
        Assert.Equal("old", File.ReadAllText(dir.Combine("out", "config.json")));
    }

    [Fact]
    public void Restore_ForceWithSymlinkedSubfolder_ReplacesTheLinkAndLeavesItsTargetUntouched()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), folder =>
        {
            Directory.CreateDirectory(Path.Combine(folder, "sub"));
            File.WriteAllText(Path.Combine(folder, "sub", "x"), "model's x");
            File.WriteAllText(Path.Combine(folder, "y"), "model's y");
        });
        dir.Write("outside/x", "outside x");
        dir.Write("outside/y", "outside y");
        Directory.CreateDirectory(dir.Combine("out"));
        Directory.CreateSymbolicLink(dir.Combine("out", "sub"), dir.Combine("outside"));
        File.CreateSymbolicLink(dir.Combine("out", "y"), dir.Combine("outside", "y"));
        using var pool = new WorkerPool(2, Options);

        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true);

        Assert.Equal(EntryKind.Directory, Posix.Lstat(dir.Combine("out", "sub")).Kind);
        Assert.Equal(EntryKind.File, Posix.Lstat(dir.Combine("out", "y")).Kind);
        Assert.Equal("model's x", File.ReadAllText(dir.Combine("out", "sub", "x")));
        Assert.Equal("model's y", File.ReadAllText(dir.Combine("out", "y")));
        Assert.Equal("outside x", File.ReadAllText(dir.Combine("outside", "x")));
        Assert.Equal("outside y", File.ReadAllText(dir.Combine("outside", "y")));
        Assert.Equal(["x", "y"], StoredModels.Entries(dir.Combine("outside")));
    }

    [Fact]
    public void Restore_ForceWhereFoldersAreFilesAndFilesAreFolders_LeavesExactlyTheModel()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), folder =>
        {
            Directory.CreateDirectory(Path.Combine(folder, "a", "b"));
            File.WriteAllText(Path.Combine(folder, "a", "b", "c.txt"), "c");
            File.WriteAllText(Path.Combine(folder, "d.txt"), "d");
        });
        dir.Write("out/a", "a file where the model has a folder");
        dir.Write("out/d.txt/inner", "a folder where the model has a file");
        using var pool = new WorkerPool(2, Options);

        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true);

        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_m")), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Equal(StoredModels.Entries(dir.Combine("models", "o_m")), StoredModels.Entries(dir.Combine("out")));
    }

    [Fact]
    public void Restore_ForceOverAnotherModel_LeavesExactlyTheModelsFilesAndNoLinkTargetTouched()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), folder =>
        {
            StoredModels.SmallModel(3)(folder);
            Directory.CreateDirectory(Path.Combine(folder, "tok"));
            File.WriteAllText(Path.Combine(folder, "tok", "vocab.json"), "{}");
        });
        dir.Write("outside/precious", "keep");
        StoredModels.SmallModel(4)(dir.Combine("out"));
        dir.Write("out/model-00002-of-00002.safetensors", "another model's shard");
        dir.Write("out/tok/merges.txt", "another model's merges");
        dir.Write("out/extra/deep/file", "x");
        Directory.CreateSymbolicLink(dir.Combine("out", "extra", "link-to-outside"), dir.Combine("outside"));
        Directory.CreateSymbolicLink(dir.Combine("out", "tok", "dangling"), dir.Combine("nowhere"));
        File.CreateSymbolicLink(dir.Combine("out", "file-link"), dir.Combine("outside", "precious"));
        using var pool = new WorkerPool(2, Options);

        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true);

        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_m")), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Equal(StoredModels.Entries(dir.Combine("models", "o_m")), StoredModels.Entries(dir.Combine("out")));
        Assert.Equal("keep", File.ReadAllText(dir.Combine("outside", "precious")));
    }

    [Fact]
    public void Restore_OutputIsASymlinkToAFolder_WritesIntoItsTarget()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(5));
        Directory.CreateDirectory(dir.Combine("real"));
        Directory.CreateSymbolicLink(dir.Combine("out"), dir.Combine("real"));
        using var pool = new WorkerPool(2, Options);

        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false);

        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_m")), ModelFolders.Snapshot(dir.Combine("real")));
        Assert.Equal(EntryKind.SymbolicLink, Posix.Lstat(dir.Combine("out")).Kind);
    }

    [Fact]
    public void Restore_OutputUnderAFile_SaysTheFolderCannotBeMadeAndKeepsTheFile()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(6));
        dir.Write("file", "a file");
        using var pool = new WorkerPool(2, Options);

        var ex = Assert.Throws<IOException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("file", "out"), force: false));

        Assert.Contains($"Cannot make the output folder {dir.Combine("file", "out")}", ex.Message);
        Assert.Equal("a file", File.ReadAllText(dir.Combine("file")));
    }

    [Fact]
    public void Restore_OutputIsAFile_IsRefusedAndTheFileKept()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(6));
        dir.Write("out", "a file");
        using var pool = new WorkerPool(2, Options);

        var ex = Assert.Throws<IOException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true));

        Assert.Contains("not a folder", ex.Message);
        Assert.Equal("a file", File.ReadAllText(dir.Combine("out")));
    }

    [Fact]
    public void Restore_OutputInsideTheStoreOrHoldingIt_IsRefusedAndTheStoreIntact()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(7));
        SortedSet<string> storeEntries = StoredModels.Entries(dir.Combine("store"));
        using var pool = new WorkerPool(2, Options);
        var restorer = new ModelRestorer(store, pool);

        Assert.Throws<UsageException>(() => restorer.Restore(ModelId.Parse("o/m"), dir.Combine("store", "out"), force: false));
        Assert.Throws<UsageException>(() => restorer.Restore(ModelId.Parse("o/m"), dir.Combine("store"), force: true));
        Assert.Throws<UsageException>(() => restorer.Restore(ModelId.Parse("o/m"), dir.Path, force: true));

        Assert.Equal(storeEntries, StoredModels.Entries(dir.Combine("store")));
        Assert.Empty(restorer.Verify(ModelId.Parse("o/m")));
    }

    [Fact]
    public void Restore_ForceIntoAFolderHoldingAProtectedFolder_IsRefusedAndNothingDeleted()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(11));
        dir.Write("models/other_model/config.json", "another model's source");
        SortedSet<string> models = StoredModels.Entries(dir.Combine("models"));
        using var pool = new WorkerPool(2, Options);
        var restorer = new ModelRestorer(store, pool) { ProtectedFolders = [dir.Combine("models")] };

        Assert.Throws<UsageException>(() => restorer.Restore(ModelId.Parse("o/m"), dir.Combine("models"), force: true));
        // Into the model's own source folder is fine: it holds nothing protected.
        restorer.Restore(ModelId.Parse("o/m"), dir.Combine("models", "o_m"), force: true);

        Assert.Equal(models, StoredModels.Entries(dir.Combine("models")));
    }

    [Fact]
    public void Restore_OutputLockedByAnotherRestore_FailsAtOnceAndWritesNothing()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(8));
        Directory.CreateDirectory(dir.Combine("out"));
        using var pool = new WorkerPool(2, Options);

        using (Posix.TryLockDirectory(dir.Combine("out")))
        {
            var ex = Assert.Throws<IOException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true));
            Assert.Contains("another zipllm restore is writing into", ex.Message);
            Assert.Empty(StoredModels.Entries(dir.Combine("out")));
        }
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_m")), ModelFolders.Snapshot(dir.Combine("out")));
    }

    [Fact]
    public void RestoreAndVerify_FileOfThousandsOfTinyTensors_KeepObjectFilesOpenBounded()
    {
        using var dir = new TempDir();
        StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.ManyTinyTensors(2, 1500));
        var backend = new FolderBackend(dir.Combine("store")) { MaxOpenObjects = 8 };
        ModelStore store = ModelStore.Open(backend, create: false);
        using var pool = new WorkerPool(4, Options);
        var restorer = new ModelRestorer(store, pool);

        restorer.Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false);
        int restorePeak = backend.PeakOpenObjects;
        Assert.Empty(restorer.Verify(ModelId.Parse("o/m")));
        int verifyPeak = backend.PeakOpenObjects;

        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_m")), ModelFolders.Snapshot(dir.Combine("out")));
        // Idle handles beyond the capacity are closed; only those in use by a worker at that moment may add to it.
        int bound = 8 + 2 * pool.Threads * 2;
        Assert.InRange(restorePeak, 1, bound);
        Assert.InRange(verifyPeak, 1, bound);
    }

    [Fact]
    public void RestoreAndVerify_FinetuneOfThousandsOfTinyDeltas_KeepObjectFilesOpenBounded()
    {
        using var dir = new TempDir();
        // Tensors of 64 random words: a changed bit codes smaller as a delta than alone, so the finetune holds deltas.
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/base"), StoredModels.ManyTinyTensors(4, 500, elements: 64));
        string ftFolder = dir.Combine("models", "o_ft");
        Directory.CreateDirectory(ftFolder);
        foreach (string shard in Directory.EnumerateFiles(dir.Combine("models", "o_base")))
        {
            byte[] bytes = File.ReadAllBytes(shard);
            bytes[^1] ^= 1; // the last tensor of each shard differs
            bytes[^9] ^= 1;
            File.WriteAllBytes(Path.Combine(ftFolder, Path.GetFileName(shard)), bytes);
        }
        using var pool = new WorkerPool(4, Options);
        new ModelIngester(store, pool, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
            .Ingest(ModelId.Parse("o/ft"), ftFolder, new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("o/base")));
        Assert.Contains(store.ReadManifest(ModelId.Parse("o/ft")).Files.SelectMany(f => f.Tensors!), t => t.Encoding == TensorEncoding.Delta);
        var backend = new FolderBackend(dir.Combine("store")) { MaxOpenObjects = 8 };
        var restorer = new ModelRestorer(ModelStore.Open(backend, create: false), pool);

        restorer.Restore(ModelId.Parse("o/ft"), dir.Combine("out"), force: false);
        int restorePeak = backend.PeakOpenObjects;
        Assert.Empty(restorer.Verify(ModelId.Parse("o/ft")));

        Assert.Equal(ModelFolders.Snapshot(ftFolder), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.InRange(restorePeak, 1, 8 + 2 * pool.Threads * 2);
        Assert.InRange(backend.PeakOpenObjects, 1, 8 + 2 * pool.Threads * 2);
    }

    [Theory]
    [MemberData(nameof(DamageKinds))]
    public void RestoreAndVerify_DamagedObject_ReportDamageNamingModelFileAndObject(string kind)
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(9));
        (ContentHash victim, string path) = StoredModels.TensorObject(store, ModelId.Parse("o/m"));
        StoredModels.Damage(path, kind);
        using var pool = new WorkerPool(2, Options);
        var restorer = new ModelRestorer(store, pool);

        var ex = Assert.Throws<StoreDamageException>(() => restorer.Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false));
        Assert.Equal("o/m", ex.ModelId?.ToString());
        Assert.Equal("model.safetensors", ex.FilePath);
        Assert.Contains("o/m: model.safetensors", ex.Message);
        if (kind != "flipped")
        {
            // A flipped byte may fall in a stream kept raw: then only the file's hash shows it.
            Assert.Equal(victim, ex.Object);
        }
        Assert.Empty(StoredModels.Entries(dir.Combine("out")));

        IReadOnlyList<string> problems = restorer.Verify(ModelId.Parse("o/m"));
        Assert.Contains(problems, p => p.Contains("o/m: model.safetensors", StringComparison.Ordinal));
    }

    public static TheoryData<string> DamageKinds => new(StoredModels.DamageKinds);

    [Fact]
    public void RestoreAndVerify_FinetuneWhoseBaseObjectIsDamaged_NameTheFinetuneFileAndTheBaseObject()
    {
        using var dir = new TempDir();
        var random = new Random(10);
        var baseTensors = ModelFolders.Bf16Layers(random, 1, 64);
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/base"), folder => ModelFolders.WriteSafetensors(Path.Combine(folder, "model.safetensors"), baseTensors));
        string ftFolder = dir.Combine("models", "o_ft");
        ModelFolders.WriteSafetensors(Path.Combine(ftFolder, "model.safetensors"), ModelFolders.Finetune(random, baseTensors));
        using var pool = new WorkerPool(2, Options);
        new ModelIngester(store, pool, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
            .Ingest(ModelId.Parse("o/ft"), ftFolder, new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("o/base")));
        Assert.Equal(TensorEncoding.Delta, store.ReadManifest(ModelId.Parse("o/ft")).Files[0].Tensors![1].Encoding);
        (ContentHash baseObject, string path) = StoredModels.TensorObject(store, ModelId.Parse("o/base"));
        StoredModels.Damage(path, "truncated");
        var restorer = new ModelRestorer(store, pool);

        var ex = Assert.Throws<StoreDamageException>(() => restorer.Restore(ModelId.Parse("o/ft"), dir.Combine("out"), force: false));

        Assert.Equal("o/ft", ex.ModelId?.ToString());
        Assert.Equal("model.safetensors", ex.FilePath);
        Assert.Equal(baseObject, ex.Object);
        Assert.Contains($"o/ft: model.safetensors: object {baseObject.Hex}", ex.Message);
        Assert.Contains(restorer.Verify(ModelId.Parse("o/ft")), p => p.Contains(baseObject.Hex, StringComparison.Ordinal));
    }

    [Fact]
    public void Verify_OneFileDamaged_ReportsItAndChecksTheNextFiles()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.ManyTinyTensors(3, 4));
        StoredModels.Damage(StoredModels.TensorObject(store, ModelId.Parse("o/m"), "model-00000.safetensors").Path, "directory");
        StoredModels.Damage(StoredModels.TensorObject(store, ModelId.Parse("o/m"), "model-00002.safetensors").Path, "empty");
        using var pool = new WorkerPool(2, Options);

        IReadOnlyList<string> problems = new ModelRestorer(store, pool).Verify(ModelId.Parse("o/m"));

        Assert.Contains(problems, p => p.Contains("o/m: model-00000.safetensors", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("o/m: model-00002.safetensors", StringComparison.Ordinal));
        Assert.DoesNotContain(problems, p => p.Contains("model-00001", StringComparison.Ordinal));
    }

    [Fact]
    public void Acquire_BeyondCapacity_ClosesIdleHandlesButNeverOneInUse()
    {
        using var dir = new TempDir();
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.ManyTinyTensors(1, 10));
        ContentHash[] objects = store.ReadManifest(ModelId.Parse("o/m")).Files[0].Tensors!.Select(t => t.Object).ToArray();
        using var cache = new ObjectHandleCache(store.Layout, capacity: 2);

        ObjectHandleCache.Lease held = cache.Acquire(objects[0]);
        for (int i = 1; i < objects.Length; i++)
        {
            cache.Acquire(objects[i]).Dispose();
        }
        // The first handle is the least recently used, but in use: it stays open and readable; idle ones beyond 2 are closed.
        Assert.False(held.Handle.IsClosed);
        Assert.Equal(new FileInfo(store.Layout.ObjectPath(objects[0])).Length, RandomAccess.GetLength(held.Handle));
        Assert.Equal(2, cache.OpenCount);
        Assert.Equal(3, cache.PeakOpenCount);

        ObjectHandleCache.Lease reopened = cache.Acquire(objects[1]);
        cache.Dispose();
        Assert.False(held.Handle.IsClosed);
        Assert.False(reopened.Handle.IsClosed);
        held.Dispose();
        reopened.Dispose();
        Assert.True(held.Handle.IsClosed);
        Assert.True(reopened.Handle.IsClosed);
        Assert.Equal(0, cache.OpenCount);
    }

    [Fact]
    public void IsProtectedFolder_RootAndHome_AreProtected()
    {
        Assert.True(OutputFolder.IsProtectedFolder("/"));
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (Directory.Exists(home))
        {
            Assert.True(OutputFolder.IsProtectedFolder(Posix.RealPath(home)));
        }
        using var dir = new TempDir();
        Assert.False(OutputFolder.IsProtectedFolder(Posix.RealPath(dir.Path)));
    }

    private sealed class CallbackProgress(Action<ByteProgress> report) : IProgress<ByteProgress>
    {
        public void Report(ByteProgress value) => report(value);
    }

    [Fact]
    public void Restore_NonEmptyOutput_RefusedWithoutForceAndReplacedWithForce()
    {
        using var dir = new TempDir();
        dir.Write("m/x.txt", "data");
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(1, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/m"), dir.Combine("m"), ModelRole.Standalone);
        dir.Write("out/other", "keep");
        var restorer = new ModelRestorer(store, pool);
        Assert.Throws<IOException>(() => restorer.Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: false));
        restorer.Restore(ModelId.Parse("o/m"), dir.Combine("out"), force: true);
        Assert.Equal("data", File.ReadAllText(dir.Combine("out", "x.txt")));
        Assert.False(File.Exists(dir.Combine("out", "other"))); // --force leaves exactly the model's files
    }
}
