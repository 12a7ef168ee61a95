using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Lineage;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Jobs;

/// <summary>Lineage detection over the tiny synthetic family: compress without base_ft.json, in any order, chains.</summary>
[Trait("Category", "Slow")]
public class LineageJobTests
{
    private static long StoredBytes(ZipLlmConfig config)
    {
        ModelStore store = ModelStore.Open(config.StorageDir, create: false);
        return store.Objects.Enumerate().Sum(store.Objects.SizeOf);
    }

    private static Dictionary<ModelId, ModelId?> Bases(ZipLlmConfig config) =>
        ModelStore.Open(config.StorageDir, create: false).ReadAllManifests().ToDictionary(m => m.Id, m => m.BaseId);

    private static ZipLlmConfig Config(TempDir dir) => ZipLlmConfig.Load(dir.Combine("config.json"));

    private static void RestoresExactly(TempDir dir, ZipLlmConfig config, SyntheticFamilyResult family)
    {
        using var pool = new WorkerPool(2);
        var restorer = new ModelRestorer(ModelStore.Open(config.StorageDir, create: false), pool);
        foreach (SyntheticModel model in family.Models)
        {
            string output = dir.Combine("restored", model.Id.FolderName);
            restorer.Restore(model.Id, output, force: false);
            Assert.Equal(ModelFolders.Snapshot(config.ModelFolder(model.Id)), ModelFolders.Snapshot(output));
        }
    }

    [Fact]
    public void Compress_WithoutBaseFt_TakesTheHandMapsBasesAndItsBytes()
    {
        using var hand = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(hand);
        CompressReport strict = new CompressJob(Config(hand), NullLogger.Instance) { Bases = BasesMode.Strict }.Run();
        Assert.Empty(strict.Failures);

        using var auto = new TempDir();
        CompressJobTests.WriteFamily(auto);
        File.Delete(auto.Combine("base_ft.json"));
        // Without cards either, nothing suggests a base: detection alone.
        foreach (string card in Directory.EnumerateFiles(auto.Combine("models"), "README.md", SearchOption.AllDirectories))
        {
            File.Delete(card);
        }
        CompressReport detected = new CompressJob(Config(auto), NullLogger.Instance).Run();
        Assert.Empty(detected.Failures);

        Dictionary<ModelId, ModelId?> expected = Bases(Config(hand)), found = Bases(Config(auto));
        foreach (SyntheticModel model in family.Models)
        {
            if (model.Kind == SyntheticModelKind.FarFinetune)
            {
                // Trained so far that its base is no better than nothing: whichever costs less.
                Assert.True(found[model.Id] is null || found[model.Id] == model.BaseId, $"far finetune took {found[model.Id]}");
                continue;
            }
            if (model.Kind == SyntheticModelKind.ReUpload)
            {
                // Every file is already stored: no delta is coded, whichever base it names.
                continue;
            }
            Assert.True(expected[model.Id] == found[model.Id], $"{model.Id}: base {found[model.Id]}, the hand map's {expected[model.Id]}");
        }
        long handBytes = StoredBytes(Config(hand)), autoBytes = StoredBytes(Config(auto));
        Assert.True(Math.Abs(autoBytes - handBytes) <= handBytes * 0.02, $"detected {autoBytes} B against the hand map's {handBytes} B");
        RestoresExactly(auto, Config(auto), family);
    }

    [Fact]
    public void Compress_ShuffledOrder_EndsWithTheSameBytes()
    {
        using var inOrder = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(inOrder);
        File.Delete(inOrder.Combine("base_ft.json"));
        Assert.Empty(new CompressJob(Config(inOrder), NullLogger.Instance).Run().Failures);

        using var shuffled = new TempDir();
        CompressJobTests.WriteFamily(shuffled);
        File.Delete(shuffled.Combine("base_ft.json"));
        // Finetunes before their base; the cards still name it, and the base is stored first for them: so no cards.
        foreach (string card in Directory.EnumerateFiles(shuffled.Combine("models"), "README.md", SearchOption.AllDirectories))
        {
            File.Delete(card);
        }
        // Every finetune before its base, the base last: the hardest order for a greedy choice.
        ModelId[] order = [.. family.Models.Select(m => m.Id).Reverse()];
        File.WriteAllLines(shuffled.Combine("test_models.txt"), order.Select(id => id.ToString()));
        Assert.Empty(new CompressJob(Config(shuffled), NullLogger.Instance).Run().Failures);

        long a = StoredBytes(Config(inOrder)), b = StoredBytes(Config(shuffled));
        Assert.True(Math.Abs(a - b) <= a * 0.02, $"shuffled {b} B against {a} B in order");
        RestoresExactly(shuffled, Config(shuffled), family);
    }

    [Fact]
    public void Compress_Chain_StoresTheLastAgainstTheMiddleAndSurvivesItsRemoval()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        File.Delete(dir.Combine("base_ft.json"));
        ZipLlmConfig config = Config(dir);
        Assert.Empty(new CompressJob(config, NullLogger.Instance).Run().Failures);
        ModelId chat = SyntheticFamily.IdOf(SyntheticModelKind.ChainFinetune), middle = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);
        ModelStore store = ModelStore.Open(config.StorageDir, create: false);
        Manifest chatManifest = store.ReadManifest(chat);
        Assert.Equal(middle, chatManifest.BaseId);
        Assert.Equal(2, LineagePlanner.DepthOf(chatManifest));

        new RemoveJob(config, NullLogger.Instance).Run(middle);
        Assert.False(store.Contains(middle));
        using var pool = new WorkerPool(2);
        var restorer = new ModelRestorer(store, pool);
        Assert.Empty(restorer.Verify(chat));
        string output = dir.Combine("restored-chat");
        restorer.Restore(chat, output, force: false);
        Assert.Equal(ModelFolders.Snapshot(config.ModelFolder(chat)), ModelFolders.Snapshot(output));
    }

    [Fact]
    public void CompressAndItsDryRun_MaxDepthOne_RebaseTheChainOnTheBase()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        ZipLlmConfig config = Config(dir);
        // base_ft.json lists the chat model under the full finetune, a finetune itself: with depth 1, law or not, it is re-based.
        foreach (BasesMode mode in new[] { BasesMode.Strict, BasesMode.Auto })
        {
            if (Directory.Exists(config.StorageDir))
            {
                Directory.Delete(config.StorageDir, recursive: true);
            }
            // The dry run plans what compress then does.
            BasesReport plan = new BasesJob(config, NullLogger.Instance) { Bases = mode, MaxDepth = 1 }.Run();
            BaseDecision planned = plan.Decisions.Single(d => d.Model == SyntheticFamily.IdOf(SyntheticModelKind.ChainFinetune));
            Assert.True(planned.Base == SyntheticFamily.IdOf(SyntheticModelKind.Base), $"{mode}: planned base {planned.Base} ({planned.Reason})");
            Assert.Equal(1, planned.Depth);
            Assert.Empty(new CompressJob(config, NullLogger.Instance) { Bases = mode, MaxDepth = 1 }.Run().Failures);
            ModelStore store = ModelStore.Open(config.StorageDir, create: false);
            Manifest chat = store.ReadManifest(SyntheticFamily.IdOf(SyntheticModelKind.ChainFinetune));
            Assert.True(chat.BaseId == SyntheticFamily.IdOf(SyntheticModelKind.Base), $"{mode}: base {chat.BaseId}");
            Assert.True(store.ReadAllManifests().All(m => LineagePlanner.DepthOf(m) <= 1), mode.ToString());
        }
    }

    [Fact]
    public void Compress_StrictWithoutBaseFt_FailsNamingTheFile()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        File.Delete(dir.Combine("base_ft.json"));
        var ex = Assert.Throws<FileNotFoundException>(() => new CompressJob(Config(dir), NullLogger.Instance) { Bases = BasesMode.Strict }.Run());
        Assert.Contains("base_ft.json", ex.Message);
        Assert.Contains("--bases strict", ex.Message);
    }

    [Fact]
    public void Compress_StoreWrittenWithoutSketches_StillFindsTheBase()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        ZipLlmConfig config = Config(dir);
        // The base stored as an older build did: no sketch in its manifest.
        ModelStore store = ModelStore.Open(config.StorageDir, create: true);
        using (var pool = new WorkerPool(2))
        {
            new ModelIngester(store, pool, NullLogger.Instance).Ingest(family.BaseId, family.Models[0].Folder, new ModelRole(ModelRoleKind.Base, null));
        }
        Assert.Null(store.ReadManifest(family.BaseId).Sketch);
        File.Delete(dir.Combine("base_ft.json"));
        File.WriteAllLines(dir.Combine("test_models.txt"), [family.BaseId.ToString(), SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune).ToString()]);
        var logger = new ListLogger();
        Assert.Empty(new CompressJob(config, logger).Run().Failures);
        Manifest ft = store.ReadManifest(SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune));
        Assert.Equal(family.BaseId, ft.BaseId);
        Assert.NotNull(ft.Sketch);
        Assert.Contains(ft.Sketch!.Value, ft.NeededObjects());
    }

    [Fact]
    public void Bases_PlansWhatCompressDoesAndStoresNothing()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        File.Delete(dir.Combine("base_ft.json"));
        ZipLlmConfig config = Config(dir);
        BasesReport plan = new BasesJob(config, NullLogger.Instance).Run();
        Assert.False(Directory.Exists(config.StorageDir));
        Assert.Empty(plan.Failures);
        Assert.Equal(family.Models.Count, plan.Decisions.Count);

        CompressReport compress = new CompressJob(config, NullLogger.Instance).Run();
        Dictionary<ModelId, ModelId?> stored = Bases(config);
        foreach (BaseDecision decision in plan.Decisions)
        {
            Assert.True(stored[decision.Model] == decision.Base, $"{decision.Model}: planned {decision.Base}, stored against {stored[decision.Model]}");
        }
        // Once stored, the plan reports what was stored.
        BasesReport after = new BasesJob(config, NullLogger.Instance).Run();
        Assert.Empty(after.Decisions);
        Assert.Equal(family.Models.Count, after.Stored.Count);
        Assert.Equal(compress.Decisions!.Count, family.Models.Count);
    }
}
