using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Safetensors;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>Remove deletes a model and exactly the objects no other model needs.</summary>
public class RemoveTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

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
}
