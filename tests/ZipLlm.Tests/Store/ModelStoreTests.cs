using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
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
        IngestResult baseResult = ingester.Ingest(ModelId.Parse("org/base"), dir.Combine("models", "org_base"), new ModelRole(ModelRoleKind.Base, null));
        IngestResult ftResult = ingester.Ingest(ModelId.Parse("my_org/ft"), dir.Combine("models", "my_org_ft"), new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("org/base")));

        Assert.Equal(8, ftResult.DeltaTensors);
        Assert.Equal(1, ftResult.DedupFiles); // config.json is the same bytes as the base's
        Assert.True(ftResult.AddedBytes < baseResult.AddedBytes / 2, $"finetune added {ftResult.AddedBytes}, base {baseResult.AddedBytes}");

        var restorer = new ModelRestorer(store, pool);
        restorer.Restore(ModelId.Parse("org/base"), dir.Combine("out", "base"), force: false);
        restorer.Restore(ModelId.Parse("my_org/ft"), dir.Combine("out", "ft"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "org_base")), ModelFolders.Snapshot(dir.Combine("out", "base")));
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "my_org_ft")), ModelFolders.Snapshot(dir.Combine("out", "ft")));
        Assert.Empty(restorer.Verify(ModelId.Parse("my_org/ft")));
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
        ingester.Ingest(ModelId.Parse("o/a"), dir.Combine("a"), ModelRole.Standalone);
        ingester.Ingest(ModelId.Parse("o/b"), dir.Combine("b"), ModelRole.Standalone);

        IReadOnlyList<Manifest> first = store.ReadAllManifests();
        IReadOnlyList<Manifest> second = store.ReadAllManifests();
        Assert.Equal(["o/a", "o/b"], first.Select(m => m.Id).Select(m => m.ToString()));
        Assert.Same(first[0], second[0]);
        Assert.Same(first[1], second[1]);

        // Another process replaces o/a's manifest (here: the same model with one more file) and removes o/b.
        string path = store.Layout.ManifestPath(ModelId.Parse("o/a"));
        Manifest changed = first[0] with { Files = [.. first[0].Files, first[0].Files[0] with { Path = "copy.safetensors" }] };
        File.WriteAllBytes(path + ".tmp", changed.Sealed().ToJson());
        File.Move(path + ".tmp", path, overwrite: true);
        File.Delete(store.Layout.ManifestPath(ModelId.Parse("o/b")));

        IReadOnlyList<Manifest> third = store.ReadAllManifests();
        Assert.Equal(["o/a"], third.Select(m => m.Id).Select(m => m.ToString()));
        Assert.NotSame(first[0], third[0]);
        Assert.Equal(first[0].Files.Length + 1, third[0].Files.Length);
    }
}
