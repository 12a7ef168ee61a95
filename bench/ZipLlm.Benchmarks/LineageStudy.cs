using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Codecs;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Lineage;
using ZipLlm.Store;

namespace ZipLlm.Benchmarks;

/// <summary>
/// <c>--lineage CONFIG</c>: what lineage detection adds to compress, with 1, 10 and 100 stored candidates. The config's
/// first model is the base and its second the finetune to place. The finetune is stored against the base for real
/// (its ingest time is the yardstick); the candidates are the base's sketch and 99 copies of it each moved by its own
/// noise, stored as sketch objects with manifests in a store of their own, so that reading them back counts too.
/// Detection's cost is sketching the finetune from its files, reading the candidates' sketches and choosing.
/// </summary>
internal static class LineageStudy
{
    private const int Runs = 5;

    public static void Run(string configPath)
    {
        ZipLlmConfig config = ZipLlmConfig.Load(configPath);
        // The synthetic stand-in list where setup wrote one, as the CLI's verbs read it.
        ModelList list = ModelList.Load(StandInModelList.Resolve(config).Path);
        ModelId baseId = list.Models[0], finetuneId = list.Models[1];
        string scratch = Directory.CreateTempSubdirectory("zipllm-lineage-").FullName;
        try
        {
            // The yardstick: the finetune's ingest against its base, in a store of its own (the base stored first).
            string listPath = Path.Combine(scratch, "models.txt");
            File.WriteAllLines(listPath, [baseId.ToString(), finetuneId.ToString()]);
            var pair = new ZipLlmConfig(Path.Combine(scratch, "config.json"), config.ModelDir, Path.Combine(scratch, "store"), listPath,
                Path.Combine(scratch, "no-base_ft.json"), config.Threads);
            CompressReport report = new CompressJob(pair, NullLogger.Instance).Run();
            IngestResult finetune = report.Results.Single(r => r.ModelId == finetuneId);
            Console.WriteLine($"{finetuneId}: {finetune.OriginalBytes / 1e6:F1} MB stored against {baseId} in {finetune.Elapsed.TotalSeconds:F2} s " +
                $"({report.Decisions!.Single(d => d.Model == finetuneId).Base?.ToString() ?? "alone"} chosen), {config.Threads} threads");

            double sketchSeconds = Median(() => ModelSketches.FromFolder(finetuneId, config.ModelFolder(finetuneId)));
            ModelSketch target = ModelSketches.FromFolder(finetuneId, config.ModelFolder(finetuneId));
            ModelSketch baseSketch = ModelSketches.FromFolder(baseId, config.ModelFolder(baseId));
            Console.WriteLine($"sketch of the finetune from its files: {sketchSeconds * 1e3:F1} ms ({target.SampleBytes / 1e3:F0} KB sampled of {target.TensorBytes / 1e6:F1} MB)");
            Console.WriteLine($"{"candidates",10} {"read sketches ms",17} {"choose ms",10} {"detection ms",13} {"of ingest",10}");
            foreach (int count in new[] { 1, 10, 100 })
            {
                ModelStore store = CandidateStore(Path.Combine(scratch, $"candidates-{count}"), baseId, baseSketch, count);
                var loads = new List<double>();
                var chooses = new List<double>();
                for (int run = 0; run < Runs; run++)
                {
                    using var planner = new LineagePlanner(store, CodecOptions.Default, NullLogger.Instance);
                    var clock = Stopwatch.StartNew();
                    _ = planner.CandidateCount;
                    loads.Add(clock.Elapsed.TotalSeconds);
                    clock.Restart();
                    BaseDecision decision = planner.Choose(finetuneId, target, hint: null);
                    chooses.Add(clock.Elapsed.TotalSeconds);
                    if (decision.Base != baseId)
                    {
                        Console.WriteLine($"  (with {count} candidates the choice was {decision.Base?.ToString() ?? "none"}, not {baseId})");
                    }
                }
                double load = MedianOf(loads), choose = MedianOf(chooses);
                double detection = sketchSeconds + load + choose;
                Console.WriteLine($"{count,10} {load * 1e3,17:F1} {choose * 1e3,10:F1} {detection * 1e3,13:F1} {detection / finetune.Elapsed.TotalSeconds,10:P1}");
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>A store holding <paramref name="count"/> candidates: the base's sketch, and copies of it each moved by noise of its own.</summary>
    private static ModelStore CandidateStore(string root, ModelId baseId, ModelSketch baseSketch, int count)
    {
        ModelStore store = ModelStore.Open(root, create: true);
        using var pool = new WorkerPool(1);
        for (int i = 0; i < count; i++)
        {
            ModelSketch sketch = i == 0 ? baseSketch : Moved(baseSketch, seed: i, share: 0.05 + 0.01 * i);
            byte[] bytes = sketch.ToBytes();
            ContentHash hash = ContentHash.Of(bytes);
            store.Objects.Write(hash, stream => TensorCodec.Encode(stream, ElementLayout.Bytes, RawChunkSource.FromMemory(bytes), null, default, pool));
            ModelId id = i == 0 ? baseId : ModelId.Parse($"candidates/ft-{i:D3}");
            store.CommitManifest(Manifest.Create(id, ModelRoleKind.Standalone, null, [], 0, 0, DateTimeOffset.UtcNow, sketch: hash));
        }
        return store;
    }

    /// <summary>The sketch with every BF16 word moved by a normal step of <paramref name="share"/> of its magnitude.</summary>
    private static ModelSketch Moved(ModelSketch sketch, int seed, double share)
    {
        var random = new Random(seed);
        return new ModelSketch(sketch.TensorBytes, sketch.Tensors.Select(t => t with
        {
            Windows = t.Windows.Select(w =>
            {
                byte[] bytes = (byte[])w.Bytes.Clone();
                if (t.DType == Safetensors.DType.BF16)
                {
                    Span<ushort> words = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                    for (int k = 0; k < words.Length; k++)
                    {
                        float value = BitConverter.UInt32BitsToSingle((uint)words[k] << 16);
                        double normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                        words[k] = (ushort)(BitConverter.SingleToUInt32Bits((float)(value * (1 + share * normal))) >> 16);
                    }
                }
                return w with { Bytes = bytes };
            }).ToArray(),
        }).ToList());
    }

    private static double Median(Action action)
    {
        var times = new List<double>();
        for (int run = 0; run < Runs; run++)
        {
            var clock = Stopwatch.StartNew();
            action();
            times.Add(clock.Elapsed.TotalSeconds);
        }
        return MedianOf(times);
    }

    private static double MedianOf(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
