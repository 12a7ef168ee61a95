using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>gc deletes exactly what no stored model needs: orphans of killed or failed runs, and nothing else.</summary>
public class GarbageCollectionTests
{
    [Fact]
    public void CollectGarbage_OrphansOfAKilledRemove_AreDeletedAndEveryModelStillRestores()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        HashSet<ContentHash> before = store.Objects.Enumerate().ToHashSet();
        // A remove killed between deleting the manifest and deleting the objects leaves the finetune's objects behind.
        File.Delete(store.Layout.ManifestPath(ModelId.Parse("o/ft")));
        Manifest @base = store.ReadManifest(ModelId.Parse("o/base"));

        GarbageReport dry = store.CollectGarbage(dryRun: true);
        Assert.True(dry.Objects > 0);
        Assert.Equal(before, store.Objects.Enumerate().ToHashSet());

        GarbageReport report = store.CollectGarbage();
        Assert.Equal(dry.Objects, report.Objects);
        Assert.Equal(dry.Bytes, report.Bytes);
        Assert.Equal(@base.NeededObjects().ToHashSet(), store.Objects.Enumerate().ToHashSet());
        Assert.Equal(before.Count - report.Objects, report.Kept);
        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/base"), dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("base")), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Equal(0, store.CollectGarbage().Objects);
    }

    [Fact]
    public void CollectGarbage_ObjectsOfAFailedCompress_AreDeletedAndTheFinetunesBaseIsKept()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        HashSet<ContentHash> needed = store.ReadAllManifests().SelectMany(m => m.NeededObjects()).ToHashSet();
        // An object written by a compress that died before its manifest.
        byte[] orphan = TensorCodec.Encode(ElementLayout.Bytes, new byte[] { 1, 2, 3 }, null, pool);
        ContentHash orphanName = ContentHash.Of([1, 2, 3]);
        store.Objects.Write(orphanName, stream => stream.Write(orphan));
        // Removing the base keeps what the finetune's deltas decode from.
        store.Remove(ModelId.Parse("o/base"));

        store.CollectGarbage();
        Assert.False(store.Objects.Contains(orphanName));
        Assert.Equal(store.ReadManifest(ModelId.Parse("o/ft")).NeededObjects().ToHashSet(), store.Objects.Enumerate().ToHashSet());
        Assert.Subset(needed, store.Objects.Enumerate().ToHashSet());
        Assert.Empty(new ModelRestorer(store, pool).Verify(ModelId.Parse("o/ft")));
    }

    [Fact]
    public void CollectGarbage_WithGrace_KeepsUnneededObjectsWrittenWithinItAndDeletesOlderOnes()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        File.Delete(store.Layout.ManifestPath(ModelId.Parse("o/ft")));
        var orphans = store.Objects.Enumerate().Where(h => !store.ReadManifest(ModelId.Parse("o/base")).NeededObjects().Contains(h)).ToList();
        Assert.NotEmpty(orphans);
        // Half of them written two hours ago, as far as their times tell.
        var old = orphans.Where((_, i) => i % 2 == 0).ToHashSet();
        foreach (ContentHash hash in old)
        {
            File.SetLastWriteTimeUtc(store.Layout.ObjectPath(hash), DateTime.UtcNow.AddHours(-2));
        }

        GarbageReport report = store.CollectGarbage(grace: TimeSpan.FromHours(1));

        Assert.Equal(old.Count, report.Objects);
        Assert.Equal(orphans.Count - old.Count, report.Recent);
        Assert.All(old, h => Assert.False(store.Objects.Contains(h)));
        Assert.All(orphans.Except(old), h => Assert.True(store.Objects.Contains(h)));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.CollectGarbage(grace: TimeSpan.FromMinutes(-1)));
    }
}
