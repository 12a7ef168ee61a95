using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Safetensors;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

public class ModelStoreTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

    [Fact]
    public void IngestThenRestore_BaseAndFinetune_AreByteIdenticalAndFinetuneUsesDeltas()
    {
        using var dir = new TempDir();
        var random = new Random(1);
        var baseTensors = ModelFolders.Bf16Layers(random, 2, 48);
        ModelFolders.WriteSafetensors(dir.Combine("models", "org_base", "model.safetensors"), baseTensors, new Dictionary<string, string> { ["format"] = "pt" });
        dir.Write("models/org_base/config.json", "{\"hidden_size\": 48}");
        var ftTensors = ModelFolders.Finetune(random, baseTensors);
        ModelFolders.WriteSafetensors(dir.Combine("models", "my_org_ft", "model.safetensors"), ftTensors);
        dir.Write("models/my_org_ft/config.json", "{\"hidden_size\": 48}");

        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        IngestResult baseResult = ingester.Ingest("org/base", dir.Combine("models", "org_base"), new ModelRole(ModelRoleKind.Base, null));
        IngestResult ftResult = ingester.Ingest("my_org/ft", dir.Combine("models", "my_org_ft"), new ModelRole(ModelRoleKind.Finetune, "org/base"));

        Assert.Equal(8, ftResult.DeltaTensors);
        Assert.Equal(1, ftResult.DedupFiles); // config.json is the same bytes as the base's
        Assert.True(ftResult.AddedBytes < baseResult.AddedBytes / 2, $"finetune added {ftResult.AddedBytes}, base {baseResult.AddedBytes}");

        var restorer = new ModelRestorer(store, pool);
        restorer.Restore("org/base", dir.Combine("out", "base"), force: false);
        restorer.Restore("my_org/ft", dir.Combine("out", "ft"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "org_base")), ModelFolders.Snapshot(dir.Combine("out", "base")));
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "my_org_ft")), ModelFolders.Snapshot(dir.Combine("out", "ft")));
        Assert.Empty(restorer.Verify("my_org/ft"));
    }

    [Fact]
    public void Ingest_ReshardedAndReorderedCopy_DedupsEveryTensor()
    {
        using var dir = new TempDir();
        var random = new Random(2);
        var tensors = ModelFolders.Bf16Layers(random, 2, 32);
        ModelFolders.WriteSafetensors(dir.Combine("a", "model.safetensors"), tensors);
        ModelFolders.WriteSafetensors(dir.Combine("b", "model-00001-of-00002.safetensors"), tensors.Skip(4).Reverse().ToList());
        ModelFolders.WriteSafetensors(dir.Combine("b", "model-00002-of-00002.safetensors"), tensors.Take(4).ToList());

        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        ingester.Ingest("o/a", dir.Combine("a"), ModelRole.Standalone);
        IngestResult copy = ingester.Ingest("o/b", dir.Combine("b"), ModelRole.Standalone);

        Assert.Equal(tensors.Count, copy.DedupTensors);
        new ModelRestorer(store, pool).Restore("o/b", dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("b")), ModelFolders.Snapshot(dir.Combine("out")));
    }

    [Fact]
    public void Ingest_MalformedSafetensors_StoresNothing()
    {
        using var dir = new TempDir();
        ModelFolders.WriteSafetensors(dir.Combine("m", "a.safetensors"), ModelFolders.Bf16Layers(new Random(3), 1, 8));
        byte[] bad = File.ReadAllBytes(dir.Combine("m", "a.safetensors"));
        File.WriteAllBytes(dir.Combine("m", "b.safetensors"), bad[..^3]);
        File.WriteAllText(dir.Combine("m", "readme.md"), "x");

        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(1, Options);
        var ex = Assert.ThrowsAny<Exception>(() => new ModelIngester(store, pool, NullLogger.Instance).Ingest("o/m", dir.Combine("m"), ModelRole.Standalone));
        Assert.True(ex is InvalidDataException or EndOfStreamException, ex.GetType().Name);
        Assert.Contains("b.safetensors", ex.Message);
        Assert.False(store.Contains("o/m"));
        Assert.Empty(store.Objects.Enumerate());
    }

    [Fact]
    public void VerifyAndRestore_CorruptedObject_ReportModelAndFileAndWriteNothing()
    {
        using var dir = new TempDir();
        var random = new Random(4);
        ModelFolders.WriteSafetensors(dir.Combine("m", "model.safetensors"), ModelFolders.Bf16Layers(random, 1, 64));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest("o/m", dir.Combine("m"), ModelRole.Standalone);

        Manifest manifest = store.ReadManifest("o/m");
        string victim = store.Layout.ObjectPath(ContentHash.Parse(manifest.Files[0].Tensors![1].Object));
        byte[] bytes = File.ReadAllBytes(victim);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(victim, bytes);

        var restorer = new ModelRestorer(store, pool);
        IReadOnlyList<string> problems = restorer.Verify("o/m");
        Assert.Single(problems);
        Assert.Contains("o/m", problems[0]);
        Assert.Contains("model.safetensors", problems[0]);

        var ex = Assert.Throws<StoreDamageException>(() => restorer.Restore("o/m", dir.Combine("out"), force: false));
        Assert.Contains("model.safetensors", ex.Message);
        Assert.Empty(Directory.EnumerateFiles(dir.Combine("out")));
    }

    [Fact]
    public void Remove_Base_KeepsWhatItsFinetuneNeeds_ThenRemovingTheFinetuneEmptiesTheStore()
    {
        using var dir = new TempDir();
        var random = new Random(5);
        var baseTensors = ModelFolders.Bf16Layers(random, 1, 32);
        ModelFolders.WriteSafetensors(dir.Combine("base", "model.safetensors"), baseTensors);
        ModelFolders.WriteSafetensors(dir.Combine("ft", "model.safetensors"), ModelFolders.Finetune(random, baseTensors));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        ingester.Ingest("o/base", dir.Combine("base"), new ModelRole(ModelRoleKind.Base, null));
        int baseObjects = store.Objects.Enumerate().Count();
        ingester.Ingest("o/ft", dir.Combine("ft"), new ModelRole(ModelRoleKind.Finetune, "o/base"));

        // Removing the base keeps the objects the finetune's deltas need.
        store.Remove("o/base");
        Assert.False(store.Contains("o/base"));
        var restorer = new ModelRestorer(store, pool);
        restorer.Restore("o/ft", dir.Combine("out-ft"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("ft")), ModelFolders.Snapshot(dir.Combine("out-ft")));

        (int removed, long bytes, _, _) = store.Remove("o/ft");
        Assert.True(removed >= baseObjects, $"removed {removed} of at least {baseObjects}");
        Assert.True(bytes > 0);
        Assert.Empty(store.Objects.Enumerate());
    }

    [Fact]
    public void Remove_Finetune_ReclaimsOnlyItsObjectsAndBaseStillRestores()
    {
        using var dir = new TempDir();
        var random = new Random(15);
        var baseTensors = ModelFolders.Bf16Layers(random, 1, 32);
        ModelFolders.WriteSafetensors(dir.Combine("base", "model.safetensors"), baseTensors);
        ModelFolders.WriteSafetensors(dir.Combine("ft", "model.safetensors"), ModelFolders.Finetune(random, baseTensors));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        ingester.Ingest("o/base", dir.Combine("base"), new ModelRole(ModelRoleKind.Base, null));
        HashSet<ContentHash> baseObjects = store.Objects.Enumerate().ToHashSet();
        ingester.Ingest("o/ft", dir.Combine("ft"), new ModelRole(ModelRoleKind.Finetune, "o/base"));
        Assert.True(store.Objects.Enumerate().Count() > baseObjects.Count);

        (int removed, long bytes, _, _) = store.Remove("o/ft");
        Assert.True(removed > 0 && bytes > 0, $"removed {removed} objects, {bytes} bytes");
        Assert.Equal(baseObjects, store.Objects.Enumerate().ToHashSet());
        new ModelRestorer(store, pool).Restore("o/base", dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("base")), ModelFolders.Snapshot(dir.Combine("out")));
    }

    [Fact]
    public void Verify_MissingObject_IsReportedWithTheModel()
    {
        using var dir = new TempDir();
        var random = new Random(16);
        ModelFolders.WriteSafetensors(dir.Combine("m", "model.safetensors"), ModelFolders.Bf16Layers(random, 1, 32));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest("o/m", dir.Combine("m"), ModelRole.Standalone);
        string name = store.ReadManifest("o/m").Files[0].Tensors![0].Object;
        File.Delete(store.Layout.ObjectPath(ContentHash.Parse(name)));

        IReadOnlyList<string> problems = new ModelRestorer(store, pool).Verify("o/m");
        Assert.Contains(problems, p => p.Contains("o/m", StringComparison.Ordinal) && p.Contains(name, StringComparison.Ordinal) && p.Contains("missing", StringComparison.Ordinal));
    }

    [Fact]
    public void Restore_NonEmptyOutput_RefusedWithoutForceAndReplacedWithForce()
    {
        using var dir = new TempDir();
        dir.Write("m/x.txt", "data");
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(1, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest("o/m", dir.Combine("m"), ModelRole.Standalone);
        dir.Write("out/other", "keep");
        var restorer = new ModelRestorer(store, pool);
        Assert.Throws<IOException>(() => restorer.Restore("o/m", dir.Combine("out"), force: false));
        restorer.Restore("o/m", dir.Combine("out"), force: true);
        Assert.Equal("data", File.ReadAllText(dir.Combine("out", "x.txt")));
        Assert.False(File.Exists(dir.Combine("out", "other"))); // --force leaves exactly the model's files
    }

    [Fact]
    public void Open_FolderWithOtherFiles_IsRefusedAndLeftAlone()
    {
        using var dir = new TempDir();
        dir.Write("notes.txt", "mine");
        Assert.Throws<IOException>(() => ModelStore.Open(dir.Path, create: true));
        Assert.Equal(["notes.txt"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Open_NewerFormat_IsRefused()
    {
        using var dir = new TempDir();
        ModelStore.Open(dir.Combine("store"), create: true);
        File.WriteAllText(dir.Combine("store", "FORMAT"), "zipllm-store 2\n");
        Assert.Throws<NotSupportedException>(() => ModelStore.Open(dir.Combine("store"), create: false));
    }

    [Fact]
    public void ReadAllManifests_ParsesOnlyWhatChanged()
    {
        using var dir = new TempDir();
        var random = new Random(9);
        ModelFolders.WriteSafetensors(dir.Combine("a", "model.safetensors"), ModelFolders.Bf16Layers(random, 1, 16));
        ModelFolders.WriteSafetensors(dir.Combine("b", "model.safetensors"), ModelFolders.Bf16Layers(random, 1, 16));
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        ingester.Ingest("o/a", dir.Combine("a"), ModelRole.Standalone);
        ingester.Ingest("o/b", dir.Combine("b"), ModelRole.Standalone);

        IReadOnlyList<Manifest> first = store.ReadAllManifests();
        IReadOnlyList<Manifest> second = store.ReadAllManifests();
        Assert.Equal(["o/a", "o/b"], first.Select(m => m.Id));
        Assert.Same(first[0], second[0]);
        Assert.Same(first[1], second[1]);

        // Another process replaces o/a's manifest (here: the same model with one more file) and removes o/b.
        string path = store.Layout.ManifestPath("o/a");
        Manifest changed = first[0] with { Files = [.. first[0].Files, first[0].Files[0] with { Path = "copy.safetensors" }] };
        File.WriteAllBytes(path + ".tmp", changed.Sealed().ToJson());
        File.Move(path + ".tmp", path, overwrite: true);
        File.Delete(store.Layout.ManifestPath("o/b"));

        IReadOnlyList<Manifest> third = store.ReadAllManifests();
        Assert.Equal(["o/a"], third.Select(m => m.Id));
        Assert.NotSame(first[0], third[0]);
        Assert.Equal(first[0].Files.Length + 1, third[0].Files.Length);
    }
}
