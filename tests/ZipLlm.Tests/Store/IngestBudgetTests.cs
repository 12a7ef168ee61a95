using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Store;

/// <summary>
/// A run's threads are one budget: ingest of many files side by side, each with many tensors, never has more than
/// the pool's threads of tensor hashing and chunk encoding busy at once, and restore never more decoding.
/// </summary>
public class IngestBudgetTests
{
    private static readonly CodecOptions Options = new() { ChunkSize = 4096 };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void IngestAndRestore_ManyFilesAndTensors_NeverMoreBusyWorkersThanThreads(int threads)
    {
        using var dir = new TempDir();
        var random = new Random(threads);
        var shards = new List<List<(string Name, ZipLlm.Safetensors.DType DType, long[] Shape, byte[] Data)>>();
        for (int shard = 0; shard < 4; shard++)
        {
            // 24 tensors a shard, most of two chunks; names differ per shard so that nothing is deduplicated.
            var tensors = ModelFolders.Bf16Layers(random, 6, 64).Select(t => ($"s{shard}.{t.Name}", t.DType, t.Shape, t.Data)).ToList();
            shards.Add(tensors);
            ModelFolders.WriteSafetensors(dir.Combine("base", $"model-{shard}.safetensors"), tensors);
            ModelFolders.WriteSafetensors(dir.Combine("ft", $"model-{shard}.safetensors"), ModelFolders.Finetune(random, tensors));
        }
        foreach (string model in new[] { "base", "ft" })
        {
            byte[] blob = new byte[5 * Options.ChunkSize + 17];
            random.NextBytes(blob);
            File.WriteAllBytes(dir.Combine(model, "tokenizer.bin"), blob);
        }
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        using var pool = new WorkerPool(threads, Options);
        // Every item sleeps a little as it starts, so that items which escaped the budget would overlap with the
        // budgeted ones and show in its peak; a tensor's hash marks itself wherever it runs.
        pool.Budget.Entered = () => Thread.Sleep(1);
        var ingester = new ModelIngester(store, pool, NullLogger.Instance);

        ingester.Ingest(ModelId.Parse("o/base"), dir.Combine("base"), new ModelRole(ModelRoleKind.Base, null));
        IngestResult ft = ingester.Ingest(ModelId.Parse("o/ft"), dir.Combine("ft"), new ModelRole(ModelRoleKind.Finetune, ModelId.Parse("o/base")));

        Assert.Equal(4 * 24, ft.DeltaTensors);
        Assert.InRange(pool.Budget.PeakBusy, 1, threads);
        Assert.Equal(0, pool.Budget.Busy);

        new ModelRestorer(store, pool).Restore(ModelId.Parse("o/ft"), dir.Combine("out"), force: false);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("ft")), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.InRange(pool.Budget.PeakBusy, 1, threads);
    }
}
