using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;
using ZipLlm.Store.Catalog;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store.Backends;

/// <summary>The store's whole life, run against every backend: what holds for a folder holds for the seam.</summary>
[Trait("Category", "S3")]
public class StoreSuiteTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

    public static TheoryData<string> Kinds => BackendContractTests.Kinds;

    [Theory]
    [MemberData(nameof(Kinds))]
    public void BaseAndFinetune_IngestRestoreVerifyRemoveGc_EachStepExact(string kind)
    {
        using var dir = new TempDir();
        (string baseFolder, string ftFolder) = WriteFamily(dir);
        ModelStore store = ModelStore.Open(BackendContractTests.Make(kind, dir), create: true);
        using var pool = new WorkerPool(2, Options);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);
        ingester.Ingest(ModelId.Parse("o/base"), baseFolder, new ModelRole(ModelRoleKind.Base, null));
        IngestResult ft = ingester.Ingest(ModelId.Parse("o/ft"), ftFolder, new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("o/base")));
        Assert.True(ft.DeltaTensors > 0);
        Assert.Equal(["o/base", "o/ft"], store.ReadAllManifests().Select(m => m.Id).Select(m => m.ToString()));

        var restorer = new ModelRestorer(store, pool);
        restorer.Restore(ModelId.Parse("o/ft"), dir.Combine("out-ft"), force: false);
        Assert.Equal(ModelFolders.Snapshot(ftFolder), ModelFolders.Snapshot(dir.Combine("out-ft")));
        Assert.Empty(restorer.Verify(ModelId.Parse("o/base")));
        Assert.Empty(restorer.Verify(ModelId.Parse("o/ft")));

        store.Remove(ModelId.Parse("o/base"));
        Assert.False(store.Contains(ModelId.Parse("o/base")));
        Assert.Empty(restorer.Verify(ModelId.Parse("o/ft")));
        Assert.Equal(0, store.CollectGarbage().Objects);
        Assert.Equal(store.ReadManifest(ModelId.Parse("o/ft")).NeededObjects().ToHashSet(), store.Objects.Enumerate().ToHashSet());
        store.Remove(ModelId.Parse("o/ft"));
        Assert.Empty(store.Objects.Enumerate());
        Assert.Empty(store.ReadAllManifests());
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Catalog_TwoWritersLostAndDamaged_RecordsEveryModelAndIsRebuiltFromTheManifests(string kind)
    {
        using var dir = new TempDir();
        (string baseFolder, string ftFolder) = WriteFamily(dir);
        IStoreBackend backend = BackendContractTests.Make(kind, dir);
        ModelStore store = ModelStore.Open(backend, create: true);
        using var pool = new WorkerPool(2, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/base"), baseFolder, new ModelRole(ModelRoleKind.Base, null));
        Manifest template = store.ReadManifest(ModelId.Parse("o/base"));
        // Another handle on the store, as another process has (for S3, a client of its own).
        ModelStore Fresh() => ModelStore.Open(kind switch
        {
            "memory" => backend,
            "s3" => RgwGateway.Shared.Backend(backend.Location),
            _ => BackendContractTests.Make(kind, dir),
        }, create: false);
        ModelStore[] writers = [store, Fresh()];
        Parallel.For(0, 2, w =>
        {
            for (int i = 0; i < 6; i++)
            {
                Assert.True(writers[w].CommitManifest(Manifest.Create(ModelId.Parse($"w{w}/m{i}"), template.Role, null, template.Files, template.OriginalBytes, 0, template.StoredAt)));
            }
        });
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/ft"), ftFolder, new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("o/base")));
        IReadOnlyList<CatalogEntry> AsWritten()
        {
            ModelStore fresh = Fresh();
            fresh.Catalog.Refresh();
            return fresh.Catalog.Snapshot().Entries;
        }
        Assert.Equal(14, AsWritten().Count);
        CatalogTests.AssertMatchesManifests(store, AsWritten());

        // Damaged (a segment's bytes replaced), then lost (every file deleted): rebuilt from the manifests each time.
        string segment = backend.ListCatalog().First(n => n.StartsWith(CatalogSegment.NamePrefix, StringComparison.Ordinal));
        backend.DeleteCatalog(segment);
        backend.CreateCatalog(segment, "not a segment"u8);
        CatalogTests.AssertMatchesManifests(store, Fresh().Catalog.Sync(withObjects: true).Entries);
        CatalogTests.AssertMatchesManifests(store, AsWritten());
        foreach (string name in backend.ListCatalog())
        {
            backend.DeleteCatalog(name);
        }
        Assert.Empty(AsWritten());
        CatalogTests.AssertMatchesManifests(store, Fresh().Catalog.Sync().Entries);
        Assert.Equal(14, AsWritten().Count);

        // Remove: exactly what only the model held, and the catalog says so at once.
        ModelStore remover = Fresh();
        remover.Remove(ModelId.Parse("o/base"));
        Assert.Equal(13, AsWritten().Count);
        Assert.Empty(new ModelRestorer(remover, pool).Verify(ModelId.Parse("o/ft")));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Ingest_SameModelTwice_TheSecondManifestIsNotWrittenOverTheFirst(string kind)
    {
        using var dir = new TempDir();
        (string baseFolder, _) = WriteFamily(dir);
        IStoreBackend backend = BackendContractTests.Make(kind, dir);
        ModelStore first = ModelStore.Open(backend, create: true), second = ModelStore.Open(backend, create: false);
        using var pool = new WorkerPool(2, Options);
        IngestResult a = new ModelIngester(first, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/base"), baseFolder, ModelRole.Standalone);
        string before = backend.ManifestVersion("o/base.json")!;
        // A writer that the locks did not keep out (another machine): it finds the model stored when it commits.
        IngestResult b = new ModelIngester(second, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/base"), baseFolder, ModelRole.Standalone);

        Assert.False(a.Skipped);
        Assert.True(b.Skipped);
        Assert.Equal(before, backend.ManifestVersion("o/base.json"));
        Assert.Empty(new ModelRestorer(second, pool).Verify(ModelId.Parse("o/base")));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void DamagedObject_VerifyNamesItAndRestoreWritesNothing(string kind)
    {
        using var dir = new TempDir();
        (string baseFolder, _) = WriteFamily(dir);
        IStoreBackend backend = BackendContractTests.Make(kind, dir);
        ModelStore store = ModelStore.Open(backend, create: true);
        using var pool = new WorkerPool(2, Options);
        new ModelIngester(store, pool, NullLogger.Instance).Ingest(ModelId.Parse("o/base"), baseFolder, ModelRole.Standalone);
        StoredFile shard = store.ReadManifest(ModelId.Parse("o/base")).Files.Single(f => f.Tensors is not null);
        var victim = shard.Tensors![1].Object;
        Corrupt(backend, victim);

        IReadOnlyList<string> problems = new ModelRestorer(store, pool).Verify(ModelId.Parse("o/base"));
        Assert.Contains(problems, p => p.Contains(shard.Path) && p.Contains(victim.Hex));
        var ex = Assert.Throws<StoreDamageException>(() => new ModelRestorer(store, pool).Restore(ModelId.Parse("o/base"), dir.Combine("out"), force: false));
        Assert.Equal("o/base", ex.ModelId?.ToString());
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Combine("out")));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ObjectsWithoutAManifest_AreNotAModelAndGcReclaimsThem(string kind)
    {
        using var dir = new TempDir();
        IStoreBackend backend = BackendContractTests.Make(kind, dir);
        ModelStore store = ModelStore.Open(backend, create: true);
        using var pool = new WorkerPool(2, Options);
        // What a compress killed before its manifest leaves.
        ContentHash orphan = ContentHash.Of([1, 2, 3]);
        store.Objects.Write(orphan, stream => stream.Write(TensorCodec.Encode(ElementLayout.Bytes, new byte[] { 1, 2, 3 }, null, pool)));
        Assert.Empty(store.ReadAllManifests());

        Assert.Equal(0, store.CollectGarbage(grace: TimeSpan.FromHours(1)).Objects); // young: kept
        Assert.Equal(1, store.CollectGarbage().Objects);
        Assert.Empty(store.Objects.Enumerate());
    }

    private static void Corrupt(IStoreBackend backend, ContentHash hash)
    {
        using IObjectReadSession session = backend.OpenReadSession();
        IObjectContent content = session.Open(hash);
        byte[] bytes = new byte[content.Length];
        content.Read(0, bytes);
        bytes[bytes.Length / 2] ^= 0x10;
        // Through the seam itself: an upload under the object's name replaces it, whatever the backend.
        using IObjectUpload upload = backend.CreateObject(hash);
        upload.Stream.Write(bytes);
        upload.Commit();
    }

    private static (string Base, string Finetune) WriteFamily(TempDir dir)
    {
        var random = new Random(41);
        var baseTensors = ModelFolders.Bf16Layers(random, 2, 48);
        ModelFolders.WriteSafetensors(dir.Combine("base", "model.safetensors"), baseTensors);
        dir.Write("base/config.json", "{\"hidden_size\": 48}");
        ModelFolders.WriteSafetensors(dir.Combine("ft", "model.safetensors"), ModelFolders.Finetune(random, baseTensors));
        dir.Write("ft/config.json", "{\"hidden_size\": 48}");
        return (dir.Combine("base"), dir.Combine("ft"));
    }
}
