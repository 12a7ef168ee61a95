using System.Buffers;
using System.Globalization;
using System.Text;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;

namespace ZipLlm.Throughput;

/// <summary>
/// The memory target ("peak memory grows with the thread count and the chunk size, not with the
/// model size"): peak RSS of compress and of restore on the base model and on a model twice its
/// size, each alone in a fresh store, at every thread count asked for. Each pair is measured --runs times
/// and the medians reported: one process's peak varies by about 10 MB from run to run.
/// </summary>
internal sealed class MemoryCheck(BenchOptions options, ZipLlmConfig config, Workspace ws)
{
    public static readonly ModelId DoubleModelId = ModelId.Parse("memcheck/model-x2");
    private const int CopyChunk = 4 << 20;

    public sealed record Result(string Model, long Bytes, int Threads, double CompressSeconds, double CompressRssMb, double RestoreSeconds, double RestoreRssMb);

    public List<Result> Run()
    {
        if (!ProcessMeter.MeasuresMemory)
        {
            throw new InvalidOperationException($"the memory check reads peak RSS through GNU time, and {ProcessMeter.GnuTime} is not installed (Debian: apt-get install time).");
        }
        ModelId baseId = options.ModelsGiven ? options.Models[0] : ModelList.Load(StandInModelList.Resolve(config).Path).Base;
        string baseFolder = config.ModelFolder(baseId);
        if (!Directory.Exists(baseFolder))
        {
            throw new InvalidOperationException($"{baseFolder} (model {baseId}) does not exist.");
        }
        string doubleModelDir = ws.NewFolder("memcheck-models");
        string doubleFolder = DoubleModelId.FolderPath(doubleModelDir);
        Console.WriteLine($"memory check: writing {DoubleModelId}, every tensor of {baseId} twice (the copy with its low mantissa bits changed)");
        WriteDoubleModel(baseFolder, doubleFolder, seed: 1);

        var results = new List<Result>();
        foreach (int threads in options.Threads)
        {
            var baseRuns = new List<Result>();
            var doubleRuns = new List<Result>();
            for (int run = 0; run < options.Runs; run++)
            {
                baseRuns.Add(Measure(baseId, config.ModelDir, threads));
                doubleRuns.Add(Measure(DoubleModelId, doubleModelDir, threads));
            }
            results.Add(Median(baseRuns));
            results.Add(Median(doubleRuns));
        }
        Workspace.DeleteFolder(doubleModelDir);
        return results;
    }

    private Result Measure(ModelId model, string modelDir, int threads)
    {
        string dir = ws.NewFolder("memcheck-store");
        string list = Path.Combine(dir, "models.txt");
        string map = Path.Combine(dir, "base_ft.json");
        string cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(list, model + "\n");
        File.WriteAllText(map, "{}\n");
        Workspace.WriteConfig(cfg, modelDir, Path.Combine(dir, "store"), list, map, threads);
        long bytes = Workspace.FolderSize(model.FolderPath(modelDir));

        ProcessResult compress = ws.Zipllm("compress", cfg, "--threads", threads.ToString(CultureInfo.InvariantCulture));
        string outDir = Path.Combine(dir, "restored");
        Directory.CreateDirectory(outDir);
        ProcessResult restore = ws.Zipllm("restore", cfg, model.ToString(), outDir, "--threads", threads.ToString(CultureInfo.InvariantCulture));
        Workspace.DeleteFolder(dir);
        var result = new Result(model.ToString(), bytes, threads, compress.Seconds, ThroughputRunner.Mb(compress.PeakRssKb) ?? double.NaN, restore.Seconds,
            ThroughputRunner.Mb(restore.PeakRssKb) ?? double.NaN);
        Console.WriteLine($"  {model,-28} {bytes / 1e6,8:F1} MB, threads {threads}: compress peak RSS {result.CompressRssMb:F0} MB ({compress.Seconds:F1} s), restore peak RSS {result.RestoreRssMb:F0} MB ({restore.Seconds:F1} s)");
        return result;
    }

    private static Result Median(List<Result> runs)
    {
        static double Mid(IEnumerable<double> values)
        {
            double[] sorted = values.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        Result first = runs[0];
        return first with
        {
            CompressSeconds = Mid(runs.Select(r => r.CompressSeconds)),
            CompressRssMb = Mid(runs.Select(r => r.CompressRssMb)),
            RestoreSeconds = Mid(runs.Select(r => r.RestoreSeconds)),
            RestoreRssMb = Mid(runs.Select(r => r.RestoreRssMb)),
        };
    }

    /// <summary>
    /// Writes a model twice the size of <paramref name="baseFolder"/>: each shard holds every tensor of
    /// the base's shard, then a copy named "NAME.x2" whose lowest byte of each element has its two low
    /// bits changed at random (the low mantissa bits of BF16, F16 and F32), so no tensor repeats and
    /// the copy compresses like the original. Other files are copied; the shard index is left out,
    /// as it would no longer list every tensor.
    /// </summary>
    public static void WriteDoubleModel(string baseFolder, string targetFolder, int seed)
    {
        Directory.CreateDirectory(targetFolder);
        var random = new Random(seed);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyChunk);
        try
        {
            foreach (string source in Directory.EnumerateFiles(baseFolder).Order(StringComparer.Ordinal))
            {
                string name = Path.GetFileName(source);
                string target = Path.Combine(targetFolder, name);
                if (name == "model.safetensors.index.json")
                {
                    continue;
                }
                if (!name.EndsWith(".safetensors", StringComparison.Ordinal))
                {
                    File.Copy(source, target, overwrite: true);
                    continue;
                }
                using SafetensorsFile shard = SafetensorsFile.Open(source);
                IReadOnlyList<TensorInfo> tensors = shard.Header.Tensors;
                SafetensorsHeader header = SafetensorsHeader.Create(
                    tensors.Select(t => (t.Name, t.DType, t.Shape))
                        .Concat(tensors.Select(t => (t.Name + ".x2", t.DType, t.Shape))),
                    shard.Header.Metadata);
                using FileStream output = File.Create(target);
                header.WriteTo(output);
                foreach (bool perturb in new[] { false, true })
                {
                    foreach (TensorInfo t in tensors)
                    {
                        int elementBytes = Math.Max(1, t.DType.BitSize() / 8);
                        for (long offset = 0; offset < t.Length; offset += CopyChunk)
                        {
                            Span<byte> chunk = buffer.AsSpan(0, (int)Math.Min(CopyChunk, t.Length - offset));
                            shard.ReadTensor(t, offset, chunk);
                            if (perturb)
                            {
                                // CopyChunk is a multiple of every element size, so element starts line up across chunks.
                                for (int i = 0; i < chunk.Length; i += elementBytes)
                                {
                                    chunk[i] ^= (byte)random.Next(4);
                                }
                            }
                            output.Write(chunk);
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static string FormatTable(IReadOnlyList<Result> results)
    {
        var text = new StringBuilder();
        text.AppendLine("model                          MB  threads  compress RSS MB  restore RSS MB  compress s  restore s");
        foreach (Result r in results)
        {
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Model,-26} {r.Bytes / 1e6,7:F0}  {r.Threads,7}  {r.CompressRssMb,15:F0}  {r.RestoreRssMb,14:F0}  {r.CompressSeconds,10:F1}  {r.RestoreSeconds,9:F1}"));
        }
        foreach (var g in results.GroupBy(r => r.Threads))
        {
            Result[] pair = g.OrderBy(r => r.Bytes).ToArray();
            if (pair.Length == 2)
            {
                text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"threads {g.Key}: model size x{(double)pair[1].Bytes / pair[0].Bytes:F2} -> compress peak RSS x{pair[1].CompressRssMb / pair[0].CompressRssMb:F2}, restore peak RSS x{pair[1].RestoreRssMb / pair[0].RestoreRssMb:F2}"));
            }
        }
        return text.ToString();
    }

    public static string FormatCsv(IReadOnlyList<Result> results)
    {
        var text = new StringBuilder("model,bytes,threads,compress_seconds,compress_peak_rss_mb,restore_seconds,restore_peak_rss_mb\n");
        foreach (Result r in results)
        {
            text.Append(string.Create(CultureInfo.InvariantCulture,
                $"{r.Model},{r.Bytes},{r.Threads},{r.CompressSeconds:F4},{r.CompressRssMb:F1},{r.RestoreSeconds:F4},{r.RestoreRssMb:F1}\n"));
        }
        return text.ToString();
    }
}
