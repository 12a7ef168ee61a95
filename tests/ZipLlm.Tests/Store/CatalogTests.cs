using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Store.Catalog;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>
/// The store's catalog: what it records of every model matches the manifests; a writer's record is never lost to
/// another's; a lost, damaged or stale catalog is rebuilt from the manifests; remove deletes from it exactly what only
/// the removed model held.
/// </summary>
public class CatalogTests
{
    /// <summary>What the catalog must say of each model, taken from the manifests themselves.</summary>
    internal static void AssertMatchesManifests(ModelStore store, IReadOnlyList<CatalogEntry> entries)
    {
        IReadOnlyList<Manifest> manifests = store.ReadAllManifests();
        Assert.Equal(manifests.Select(m => m.Id), entries.Select(e => e.Id));
        foreach ((Manifest manifest, CatalogEntry entry) in manifests.Zip(entries))
        {
            Assert.Equal((manifest.Role, manifest.BaseId, manifest.Depth(), manifest.Files.Length, manifest.OriginalBytes, manifest.AddedBytes, manifest.Sketch),
                (entry.Role, entry.BaseId, entry.Depth, entry.FileCount, entry.OriginalBytes, entry.AddedBytes, entry.Sketch));
            Assert.Equal(manifest.Files.Select(f => HashKey.Of(f.Sha256)), entry.FileHashes);
            if (entry.Objects is { } objects)
            {
                Assert.Equal(manifest.NeededObjects().Select(HashKey.Of).ToHashSet(), objects.ToHashSet());
            }
        }
    }

    /// <summary>The catalog as the newest root names it, read by a fresh store without checking it against the manifests.</summary>
    internal static IReadOnlyList<CatalogEntry> AsWritten(string storeDir)
    {
        ModelStore fresh = ModelStore.Open(storeDir, create: false);
        fresh.Catalog.Refresh();
        return fresh.Catalog.Snapshot().Entries;
    }

    private static (ModelStore Store, WorkerPool Pool) ManyModels(TempDir dir, int count)
    {
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        var pool = new WorkerPool(2, new CodecOptions { ChunkSize = 4096 });
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        for (int i = 0; i < count; i++)
        {
            string folder = dir.Combine("models", $"m{i}");
            Directory.CreateDirectory(folder);
            StoredModels.SmallModel(i % 3)(folder); // three contents: models share their objects
            File.WriteAllText(Path.Combine(folder, "README.md"), $"model {i}");
            ingester.Ingest(ModelId.Parse($"org{i % 4}/m{i}"), folder, ModelRole.Standalone);
        }
        return (store, pool);
    }

    [Fact]
    public void Catalog_ModelsStored_RecordsEachAsItsManifestSaysWithoutASync()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;

        IReadOnlyList<CatalogEntry> written = AsWritten(dir.Combine("store"));
        Assert.Equal(2, written.Count);
        AssertMatchesManifests(store, written);
        Assert.Equal(ModelRoleKind.Finetune, written.Single(e => e.Id == ModelId.Parse("o/ft")).Role);
        Assert.NotEmpty(Directory.EnumerateFiles(dir.Combine("store", "catalog"), StoreCatalog.RootPrefix + "*"));
    }

    [Fact]
    public void Catalog_ManySmallCommits_KeepsFewSegmentsAndEveryRecord()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = ManyModels(dir, 40);
        using WorkerPool _ = pool;

        IReadOnlyList<CatalogEntry> written = AsWritten(dir.Combine("store"));
        Assert.Equal(40, written.Count);
        AssertMatchesManifests(store, written);
        // Merged as a binary counter carries: about log2(40) segments, and two roots (the newest and the one before).
        string[] files = Directory.GetFiles(dir.Combine("store", "catalog")).Select(Path.GetFileName).ToArray()!;
        int segments = files.Count(f => f.StartsWith(CatalogSegment.NamePrefix, StringComparison.Ordinal));
        Assert.InRange(segments, 1, 7);
        Assert.InRange(files.Count(f => f.StartsWith(StoreCatalog.RootPrefix, StringComparison.Ordinal)), 1, 2);
    }

    [Fact]
    public void Catalog_Deleted_IsRebuiltFromTheManifests()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = ManyModels(dir, 6);
        using WorkerPool _ = pool;
        Directory.Delete(dir.Combine("store", "catalog"), recursive: true);
        Assert.Empty(AsWritten(dir.Combine("store")));

        ModelStore reopened = ModelStore.Open(dir.Combine("store"), create: false);
        CatalogSnapshot synced = reopened.Catalog.Sync(withObjects: true);
        AssertMatchesManifests(store, synced.Entries);
        AssertMatchesManifests(store, AsWritten(dir.Combine("store")));
    }

    [Theory]
    [InlineData("segment-flipped")]
    [InlineData("segment-truncated")]
    [InlineData("segment-missing")]
    [InlineData("root-garbage")]
    public void Catalog_Damaged_IsRebuiltFromTheManifests(string damage)
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = ManyModels(dir, 5);
        using WorkerPool _ = pool;
        string catalog = dir.Combine("store", "catalog");
        string segment = Directory.GetFiles(catalog, CatalogSegment.NamePrefix + "*").OrderByDescending(f => new FileInfo(f).Length).First();
        string root = Directory.GetFiles(catalog, StoreCatalog.RootPrefix + "*").Max()!;
        switch (damage)
        {
            case "segment-flipped":
                byte[] bytes = File.ReadAllBytes(segment);
                bytes[bytes.Length / 2] ^= 0x40;
                File.WriteAllBytes(segment, bytes);
                break;
            case "segment-truncated":
                File.WriteAllBytes(segment, File.ReadAllBytes(segment)[..20]);
                break;
            case "segment-missing":
                File.Delete(segment);
                break;
            default:
                File.WriteAllText(root, "zipllm-catalog 1\nnot a segment line\n");
                break;
        }

        ModelStore reopened = ModelStore.Open(dir.Combine("store"), create: false);
        AssertMatchesManifests(store, reopened.Catalog.Sync(withObjects: true).Entries);
        // Written whole again: a reader of the newest root alone sees every model.
        AssertMatchesManifests(store, AsWritten(dir.Combine("store")));
    }

    [Fact]
    public void Catalog_ManifestWhoseRecordWasLost_IsRecordedByTheNextSync()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = ManyModels(dir, 4);
        using WorkerPool _ = pool;
        // A writer killed between its manifest and its record: the catalog lacks a model whose manifest is there.
        ModelId lost = ModelId.Parse("org1/m1");
        store.Catalog.Forget(ManifestKey.Of(lost));
        Assert.DoesNotContain(lost, AsWritten(dir.Combine("store")).Select(e => e.Id));
        // And one that names a model whose manifest is gone.
        store.Backend.DeleteManifest(ManifestKey.Of(ModelId.Parse("org2/m2")));

        ModelStore reopened = ModelStore.Open(dir.Combine("store"), create: false);
        AssertMatchesManifests(store, reopened.Catalog.Sync().Entries);
        AssertMatchesManifests(store, AsWritten(dir.Combine("store")));
    }

    [Fact]
    public void Catalog_ManifestDamaged_IsReportedAndLeftOut()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = ManyModels(dir, 3);
        using WorkerPool _ = pool;
        string path = store.Layout.ManifestPath(ModelId.Parse("org0/m0"));
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"role\"", "\"rôle\"", StringComparison.Ordinal));

        CatalogSnapshot snapshot = ModelStore.Open(dir.Combine("store"), create: false).Catalog.Sync();
        Assert.Equal([ModelId.Parse("org1/m1"), ModelId.Parse("org2/m2")], snapshot.Entries.Select(e => e.Id));
        Assert.Contains(snapshot.DamagedManifests, d => d.Path == path);
    }

    [Fact]
    public void Catalog_WritersInTwoStoresAtOnce_LoseNoRecord()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = ManyModels(dir, 2);
        using WorkerPool _ = pool;
        Manifest template = store.ReadManifest(ModelId.Parse("org0/m0"));
        // Two handles on one store, as two processes have, record models side by side; each record's generation is
        // taken by one of them only, and the other writes on top of the winner's.
        ModelStore[] writers = [ModelStore.Open(dir.Combine("store"), create: false), ModelStore.Open(dir.Combine("store"), create: false)];
        Parallel.For(0, 2, w =>
        {
            for (int i = 0; i < 15; i++)
            {
                Manifest manifest = Manifest.Create(ModelId.Parse($"w{w}/m{i}"), template.Role, null, template.Files, template.OriginalBytes, 0, template.StoredAt);
                Assert.True(writers[w].CommitManifest(manifest));
            }
        });

        IReadOnlyList<CatalogEntry> written = AsWritten(dir.Combine("store"));
        Assert.Equal(32, written.Count);
        AssertMatchesManifests(store, written);
    }

    [Fact]
    public void Remove_ModelAmongMany_DeletesExactlyWhatOnlyItHeldAndEveryOtherModelStillVerifies()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = ManyModels(dir, 9);
        using WorkerPool _ = pool;
        ModelId removed = ModelId.Parse("org0/m4");
        HashSet<ContentHash> before = store.Objects.Enumerate().ToHashSet();
        HashSet<ContentHash> others = store.ReadAllManifests().Where(m => m.Id != removed).SelectMany(m => m.NeededObjects()).ToHashSet();
        HashSet<ContentHash> onlyIt = store.ReadManifest(removed).NeededObjects().Except(others).ToHashSet();
        Assert.NotEmpty(onlyIt); // its README
        Assert.True(store.ReadManifest(removed).NeededObjects().Count > onlyIt.Count); // and tensors it shares

        GarbageReport report = store.Remove(removed);

        Assert.Equal(onlyIt.Count, report.Objects);
        Assert.Equal(before.Except(onlyIt).ToHashSet(), store.Objects.Enumerate().ToHashSet());
        Assert.DoesNotContain(removed, AsWritten(dir.Combine("store")).Select(e => e.Id));
        AssertMatchesManifests(store, AsWritten(dir.Combine("store")));
        var restorer = new ModelRestorer(store, pool);
        foreach (Manifest manifest in store.ReadAllManifests())
        {
            Assert.Empty(restorer.Verify(manifest.Id));
        }
        Assert.False(File.Exists(store.Layout.LockPath($"model.{removed.Org}@{removed.Name}")));
    }

    [Fact]
    public void Remove_ModelTheCatalogDoesNotKnow_StillKeepsWhatItNeeds()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        // The finetune's record lost (a writer killed after its manifest): remove must not take the base's objects it needs.
        store.Catalog.Forget(ManifestKey.Of(ModelId.Parse("o/ft")));
        ModelStore reopened = ModelStore.Open(dir.Combine("store"), create: false);

        reopened.Remove(ModelId.Parse("o/base"));

        Assert.Empty(new ModelRestorer(reopened, pool).Verify(ModelId.Parse("o/ft")));
    }

    [Fact]
    public void Segment_WrittenAndRead_GivesTheSameRecords()
    {
        using var dir = new TempDir();
        (ModelStore store, WorkerPool pool) = StoredModels.BaseAndFinetune(dir);
        using WorkerPool _ = pool;
        Manifest ft = store.ReadManifest(ModelId.Parse("o/ft"));
        CatalogEntry entry = CatalogEntry.Of("o/ft.json", "1:2", ft, [1, 2, 3]);
        (string name, byte[] bytes) = CatalogSegment.Write([new CatalogRecord("o/ft.json", entry), new CatalogRecord("x/y.json", null)]);

        List<CatalogRecord> read = CatalogSegment.Read(name, bytes, withObjects: true);

        Assert.Equal(2, read.Count);
        Assert.Null(read[1].Entry);
        CatalogEntry back = read[0].Entry!;
        Assert.Equal((entry.Id, entry.BaseId, entry.Version, entry.StoredAt, entry.Chunks, entry.Sketch), (back.Id, back.BaseId, back.Version, back.StoredAt, back.Chunks, back.Sketch));
        Assert.Equal(entry.Objects, back.Objects);
        Assert.Equal(entry.Summary, back.Summary);
        Assert.Null(CatalogSegment.Read(name, bytes, withObjects: false)[0].Entry!.Objects);
        Assert.Throws<InvalidDataException>(() => CatalogSegment.Read(CatalogSegment.NamePrefix + new string('0', 64), bytes, withObjects: true));
    }
}
