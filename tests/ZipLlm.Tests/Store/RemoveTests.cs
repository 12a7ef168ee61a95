using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>Remove deletes a model and exactly the objects no other model needs.</summary>
public class RemoveTests
{
    [Fact]
    public void Remove_Base_KeepsWhatItsFinetuneNeeds_ThenRemovingTheFinetuneEmptiesTheStore()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool owned = pool;
        int baseObjects = store.ReadManifest(ModelId.Parse("o/base")).NeededObjects().Count;

        // Removing the base keeps the objects the finetune's deltas need.
        store.Remove(ModelId.Parse("o/base"));
        Assert.False(store.Contains(ModelId.Parse("o/base")));
        var restorer = new ModelRestorer(store, pool);
        restorer.Restore(ModelId.Parse("o/ft"), dir.Combine("out-ft"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("ft")), ModelFolders.Snapshot(dir.Combine("out-ft")));

        (int removed, long bytes, _, _) = store.Remove(ModelId.Parse("o/ft"));
        Assert.True(removed >= baseObjects, $"removed {removed} of at least {baseObjects}");
        Assert.True(bytes > 0);
        Assert.Empty(store.Objects.Enumerate());
    }

    [Fact]
    public void Remove_Finetune_ReclaimsOnlyItsObjectsAndBaseStillRestores()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool owned = pool;
        HashSet<ContentHash> baseObjects = store.ReadManifest(ModelId.Parse("o/base")).NeededObjects().ToHashSet();
        Assert.True(store.Objects.Enumerate().Count() > baseObjects.Count);

        (int removed, long bytes, _, _) = store.Remove(ModelId.Parse("o/ft"));
        Assert.True(removed > 0 && bytes > 0, $"removed {removed} objects, {bytes} bytes");
        Assert.Equal(baseObjects, store.Objects.Enumerate().ToHashSet());
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/base"), dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("base")), ModelFolders.Snapshot(dir.Combine("out")));
    }
}
