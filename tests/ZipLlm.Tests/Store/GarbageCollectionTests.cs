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

    [Fact]
    public void Ingest_ReusesAnOldOrphan_RefreshesItSoGcsGraceProtectsItFromTheReuseOn()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        // The finetune's objects, orphaned (a killed remove) and written long ago.
        File.Delete(store.Layout.ManifestPath(ModelId.Parse("o/ft")));
        foreach (string file in Directory.EnumerateFiles(store.Layout.ObjectsDir, "*", SearchOption.AllDirectories))
        {
            File.SetLastWriteTimeUtc(file, new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        }

        // A compress stores the finetune again, reusing every orphan; before its manifest is written, a gc with an hour's
        // grace (one that cannot see it, on another machine) would delete whatever looks older than that.
        DateTimeOffset reused = DateTimeOffset.UtcNow;
        new ModelIngester(store, pool, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
            .Ingest(ModelId.Parse("o/ft"), dir.Combine("ft"), new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("o/base")));
        HashSet<ContentHash> ftOnly = store.ReadManifest(ModelId.Parse("o/ft")).NeededObjects()
            .Except(store.ReadManifest(ModelId.Parse("o/base")).NeededObjects()).ToHashSet();
        Assert.NotEmpty(ftOnly);
        File.Delete(store.Layout.ManifestPath(ModelId.Parse("o/ft"))); // the moment before it is written

        // Every object the finetune reused counts as written at its reuse, so the grace keeps it.
        Assert.All(store.Objects.List().Where(o => ftOnly.Contains(o.Hash)),
            o => Assert.True(o.Stat.WrittenAt > reused.AddMinutes(-1), $"{o.Hash} is counted as written at {o.Stat.WrittenAt}"));
        Assert.Equal(0, store.CollectGarbage(grace: TimeSpan.FromHours(1)).Objects);
        Assert.Subset(store.Objects.Enumerate().ToHashSet(), ftOnly);
    }
}
