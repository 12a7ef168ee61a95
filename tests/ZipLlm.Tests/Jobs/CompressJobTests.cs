using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Jobs;

/// <summary>End to end over the synthetic family: every model restores exactly, dedup and deltas happen where they should.</summary>
public class CompressJobTests
{
    [Fact]
    public void Run_SyntheticFamily_EveryModelRestoresExactlyAndStoreBeatsPlainZstd()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = WriteFamily(dir);
        ZipLlmConfig config = ZipLlmConfig.Load(dir.Combine("config.json"));

        CompressReport report = new CompressJob(config, NullLogger.Instance).Run();
        Assert.Empty(report.Failures);
        Assert.Equal(family.Models.Count, report.Results.Count(r => !r.Skipped));

        IngestResult Result(SyntheticModelKind kind) => report.Results.Single(r => r.ModelId == SyntheticFamily.IdOf(kind));
        // The exact re-upload and the re-sharded copy add (almost) nothing: whole files or every tensor are already stored.
        IngestResult reupload = Result(SyntheticModelKind.ReUpload);
        Assert.Equal(reupload.Files, reupload.DedupFiles);
        Assert.Equal(0, reupload.AddedBytes);
        IngestResult resharded = Result(SyntheticModelKind.ReshardedFinetune);
        Assert.Equal(resharded.Tensors, resharded.DedupTensors);
        // Finetunes are stored as deltas; the LoRA merge shares every untouched tensor with the base.
        Assert.True(Result(SyntheticModelKind.FullFinetune).DeltaTensors > 0);
        // A vocabulary extension still pairs every tensor, the grown embed_tokens and lm_head included.
        IngestResult vocab = Result(SyntheticModelKind.VocabExtendedFinetune);
        Assert.Equal(vocab.Tensors, vocab.DeltaTensors + vocab.DedupTensors);
        IngestResult lora = Result(SyntheticModelKind.LoraFinetune);
        Assert.True(lora.DedupTensors > lora.Tensors / 2, $"LoRA: {lora.DedupTensors} of {lora.Tensors} deduplicated");
        // The F16 copy is coded against the BF16 base converted, which it equals: next to nothing but its own small files
        // and safetensors headers, which in a model this tiny are most of what it adds.
        IngestResult f16 = Result(SyntheticModelKind.F16Copy);
        Assert.Equal(f16.Tensors, f16.DeltaTensors);
        Assert.True(f16.AddedBytes < f16.OriginalBytes / 20, $"F16 copy: {f16.AddedBytes} of {f16.OriginalBytes} bytes");
        // The full finetune's chunks take the ordered difference; the far finetune's mostly solo, and it costs no more
        // than the same model stored alone (below).
        Assert.True(Result(SyntheticModelKind.FullFinetune).Chunks!.OrderedDifference > 0);
        IngestResult far = Result(SyntheticModelKind.FarFinetune);
        Assert.True(far.Chunks!.Solo > far.Chunks.OrderedDifference, $"far finetune chunks: {far.Chunks}");

        ModelStore store = ModelStore.Open(config.StorageDir, create: false);
        using var pool = new WorkerPool(2);
        var restorer = new ModelRestorer(store, pool);
        long zstdTotal = 0;
        foreach (SyntheticModel model in family.Models)
        {
            string output = dir.Combine("restored", model.Id.FolderName);
            restorer.Restore(model.Id, output, force: false);
            var original = ModelFolders.Snapshot(model.Folder);
            Assert.Equal(original, ModelFolders.Snapshot(output));
            zstdTotal += original.Values.Sum(bytes => (long)new ZstdSharp.Compressor(3).Wrap(bytes).Length);
        }
        long storeBytes = store.Objects.Enumerate().Sum(store.Objects.SizeOf);
        Assert.True(storeBytes < zstdTotal, $"store {storeBytes} bytes, plain zstd -3 {zstdTotal} bytes");

        // The far finetune stored alone, beside the base in a store of their own (so its other files deduplicate as
        // they do here): as a delta it never cost more.
        File.WriteAllText(dir.Combine("alone.txt"), $"{family.BaseId}\n{SyntheticFamily.IdOf(SyntheticModelKind.FarFinetune)}\n");
        File.WriteAllText(dir.Combine("alone.json"), "{}");
        File.WriteAllText(dir.Combine("alone-config.json"),
            """{ "model_dir": "models", "storage_dir": "alone-store", "models_to_process": "alone.txt", "base_ft_path": "alone.json" }""");
        CompressReport alone = new CompressJob(ZipLlmConfig.Load(dir.Combine("alone-config.json")), NullLogger.Instance).Run();
        long soloBytes = alone.Results.Single(r => r.ModelId == far.ModelId).AddedBytes;
        Assert.True(far.AddedBytes <= soloBytes, $"far finetune {far.AddedBytes} bytes as a delta, {soloBytes} alone");

        // A second run stores nothing new.
        CompressReport again = new CompressJob(config, NullLogger.Instance).Run();
        Assert.Equal(family.Models.Count, again.Results.Count);
        Assert.All(again.Results, r => Assert.True(r.Skipped));
    }

    [Fact]
    public void Run_FinetuneListedBeforeBase_StoresBaseFirstAndUsesDeltas()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = WriteFamily(dir);
        ModelId ft = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);
        File.WriteAllText(dir.Combine("test_models.txt"), $"{ft}\n{family.BaseId}\n");

        CompressReport report = new CompressJob(ZipLlmConfig.Load(dir.Combine("config.json")), NullLogger.Instance).Run();
        Assert.Empty(report.Failures);
        Assert.Equal([family.BaseId, ft], report.Results.Select(r => r.ModelId));
        Assert.True(report.Results[1].DeltaTensors > 0);
    }

    [Fact]
    public void Run_OneModelMalformed_OthersStoredAndFailureNamed()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = WriteFamily(dir);
        SyntheticModel victim = family.Get(SyntheticModelKind.LoraFinetune);
        string shard = Directory.EnumerateFiles(victim.Folder, "*.safetensors").First();
        byte[] bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..(bytes.Length - 5)]);
        File.AppendAllText(dir.Combine("test_models.txt"), "missing/model\n");

        CompressReport report = new CompressJob(ZipLlmConfig.Load(dir.Combine("config.json")), NullLogger.Instance).Run();
        Assert.Equal(2, report.Failures.Count);
        Assert.Contains(report.Failures, f => f.ModelId == victim.Id && f.Error.Contains(Path.GetFileName(shard)) && f.Kind == CompressFailureKind.InvalidInput);
        Assert.Contains(report.Failures, f => f.ModelId == ModelId.Parse("missing/model") && f.Kind == CompressFailureKind.Io);
        Assert.Equal(family.Models.Count - 1, report.Results.Count);
        Assert.False(ModelStore.Open(dir.Combine("store"), create: false).Contains(victim.Id));
    }

    [Fact]
    public void Run_StrictListedBaseEndsAChainAtMaxDepth_StoresAgainstItsBaseAndWarns()
    {
        using var dir = new TempDir();
        var random = new Random(5);
        var baseTensors = ModelFolders.Bf16Layers(random, 1, 8);
        var ftTensors = ModelFolders.Finetune(random, baseTensors);
        ModelFolders.WriteSafetensors(dir.Combine("models", "org_base", "model.safetensors"), baseTensors);
        ModelFolders.WriteSafetensors(dir.Combine("models", "org_ft", "model.safetensors"), ftTensors);
        ModelFolders.WriteSafetensors(dir.Combine("models", "org_chat", "model.safetensors"), ModelFolders.Finetune(random, ftTensors));
        dir.Write("test_models.txt", "org/base\norg/ft\norg/chat\n");
        dir.Write("base_ft.json", """{"org/base": ["org/ft"], "org/ft": ["org/chat"]}""");
        dir.Write("config.json", """{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": 2}""");
        var logger = new ListLogger();

        CompressReport report = new CompressJob(ZipLlmConfig.Load(dir.Combine("config.json")), logger) { Bases = BasesMode.Strict, MaxDepth = 1 }.Run();
        Assert.Empty(report.Failures);
        // base_ft.json lists the chat model under a finetune, itself a chain of one base: the law bends to the depth limit, and says so.
        Assert.Equal(ModelId.Parse("org/base"), ModelStore.Open(dir.Combine("store"), create: false).ReadManifest(ModelId.Parse("org/chat")).BaseId);
        Assert.Contains("org/chat: its base org/ft already ends a chain of 1 bases (--max-depth); stored against org/base instead", logger.Warnings);
    }

    /// <summary>The tiny synthetic family, written by <see cref="WriteFamily"/> and stored in <c>store</c> by a compress run that stores every model.</summary>
    internal static SyntheticFamilyResult StoreFamily(TempDir dir)
    {
        SyntheticFamilyResult family = WriteFamily(dir);
        Assert.Empty(new CompressJob(ZipLlmConfig.Load(dir.Combine("config.json")), NullLogger.Instance).Run().Failures);
        return family;
    }

    internal static SyntheticFamilyResult WriteFamily(TempDir dir)
    {
        SyntheticFamilyResult family = SyntheticFamily.Generate(dir.Combine("models"), SyntheticSize.Tiny);
        family.WriteModelList(dir.Combine("test_models.txt"));
        family.WriteBaseFt(dir.Combine("base_ft.json"));
        File.WriteAllText(dir.Combine("config.json"),
            """{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": 2}""");
        return family;
    }
}
