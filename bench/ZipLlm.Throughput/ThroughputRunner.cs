using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Store.Backends;

namespace ZipLlm.Throughput;

/// <summary>
/// The timed runs. Every run is the real CLI in its own process, timed from start to exit, so a
/// figure covers everything a user waits for: start-up, reading, decoding, hashing and writing.
/// </summary>
internal sealed class ThroughputRunner(BenchOptions options, ZipLlmConfig config, Workspace ws)
{
    private readonly List<Measurement> _results = [];

    public IReadOnlyList<Measurement> Results => _results;

    /// <summary>Called after every timed run, so a long run leaves a CSV behind even if stopped.</summary>
    public Action<IReadOnlyList<Measurement>>? Progress { get; init; }

    public void RunRestore()
    {
        var layout = new StoreLayout(config.StorageDir);
        List<ModelId> missing = options.Models.Where(m => !File.Exists(layout.ManifestPath(m))).ToList();
        if (missing.Count > 0)
        {
            Console.WriteLine($"restore: {string.Join(", ", missing)} not in {config.StorageDir} yet; running 'zipllm compress' once first (untimed).");
            ws.Zipllm("compress", config.ConfigPath);
            foreach (ModelId model in missing.Where(m => !File.Exists(layout.ManifestPath(m))))
            {
                throw new InvalidOperationException($"{model} is still not in the store after compress: is it listed in {config.ModelsToProcess}?");
            }
        }

        var archives = new Dictionary<ModelId, string>();
        if (ws.HasZstd)
        {
            foreach (ModelId model in options.Models)
            {
                string folder = config.ModelFolder(model);
                if (!Directory.Exists(folder))
                {
                    Console.WriteLine($"restore: {folder} is missing, so there is no zstd baseline for {model}.");
                    continue;
                }
                string archive = Path.Combine(ws.NewFolder("archive-" + model.FolderName), "model.tar.zst");
                ws.ZstdCompress(config.ModelDir, [model.FolderName], options.ZstdLevel, Environment.ProcessorCount, archive);
                archives[model] = archive;
            }
        }

        foreach (ModelId model in options.Models)
        {
            string? archive = archives.GetValueOrDefault(model);
            if (!options.DropCache)
            {
                Console.WriteLine($"restore {model}: warm-up (untimed)");
                RestoreOnce(model, options.Threads[^1]);
                if (archive is not null)
                {
                    ZstdRestoreOnce(archive, options.Threads[^1]);
                }
            }
            foreach (int threads in options.Threads)
            {
                for (int run = 1; run <= options.Runs; run++)
                {
                    (ProcessResult r, long bytes) = RestoreOnce(model, threads);
                    Add(new Measurement(Measurement.Restore, Measurement.ZipLlm, model.ToString(), threads, run, bytes, r.Seconds, Mb(r.PeakRssKb), null, r.CpuSeconds));
                    if (archive is not null)
                    {
                        (ProcessResult z, long zbytes) = ZstdRestoreOnce(archive, threads);
                        Add(new Measurement(Measurement.Restore, Measurement.Zstd, model.ToString(), threads, run, zbytes, z.Seconds, Mb(z.PeakRssKb), null, z.CpuSeconds));
                    }
                }
            }
        }
    }

    public void RunCompress()
    {
        IReadOnlyList<ModelId> models = ModelList.Load(StandInModelList.Resolve(config).Path).Models;
        List<string> folders = models.Select(m => m.FolderName).ToList();
        long bytesIn = models.Sum(m => Workspace.FolderSize(config.ModelFolder(m)));
        Console.WriteLine($"compress: {models.Count} models, {bytesIn / 1e6:F1} MB in {config.ModelDir}");

        if (!options.DropCache)
        {
            Console.WriteLine("compress: warm-up (untimed)");
            CompressOnce(options.Threads[^1]);
            if (ws.HasZstd)
            {
                ZstdCompressOnce(folders, options.Threads[^1]);
            }
        }
        foreach (int threads in options.Threads)
        {
            for (int run = 1; run <= options.Runs; run++)
            {
                (ProcessResult r, long stored) = CompressOnce(threads);
                Add(new Measurement(Measurement.Compress, Measurement.ZipLlm, Measurement.FamilyModel, threads, run, bytesIn, r.Seconds, Mb(r.PeakRssKb), stored, r.CpuSeconds));
                if (ws.HasZstd)
                {
                    (ProcessResult z, long zstored) = ZstdCompressOnce(folders, threads);
                    Add(new Measurement(Measurement.Compress, Measurement.Zstd, Measurement.FamilyModel, threads, run, bytesIn, z.Seconds, Mb(z.PeakRssKb), zstored, z.CpuSeconds));
                }
            }
        }
    }

    private (ProcessResult, long) RestoreOnce(ModelId model, int threads)
    {
        string outDir = ws.NewFolder("restore");
        Settle(() => RestoreInputs(model));
        ProcessResult r = ws.Zipllm("restore", config.ConfigPath, model.ToString(), outDir, "--threads", threads.ToString());
        long bytes = Workspace.FolderSize(outDir);
        Workspace.DeleteFolder(outDir);
        return (r, bytes);
    }

    private (ProcessResult, long) ZstdRestoreOnce(string archive, int threads)
    {
        string outDir = ws.NewFolder("restore-zstd");
        Settle(() => [archive]);
        ProcessResult r = ws.ZstdRestore(archive, outDir, threads);
        // The tar holds one folder (the model's); count the files it unpacked.
        long bytes = Workspace.FolderSize(outDir);
        Workspace.DeleteFolder(outDir);
        return (r, bytes);
    }

    private (ProcessResult, long) CompressOnce(int threads)
    {
        string dir = ws.NewFolder("compress");
        string store = Path.Combine(dir, "store");
        string cfg = Path.Combine(dir, "config.json");
        Workspace.WriteConfig(cfg, config.ModelDir, store, config.ModelsToProcess, config.BaseFtPath, threads);
        Settle(CompressInputs);
        ProcessResult r = ws.Zipllm("compress", cfg, "--threads", threads.ToString());
        var layout = new StoreLayout(store);
        long stored = Workspace.FolderSize(layout.ObjectsDir) + Workspace.FolderSize(layout.ManifestsDir);
        Workspace.DeleteFolder(dir);
        return (r, stored);
    }

    private (ProcessResult, long) ZstdCompressOnce(List<string> folders, int threads)
    {
        string dir = ws.NewFolder("compress-zstd");
        string archive = Path.Combine(dir, "family.tar.zst");
        Settle(CompressInputs);
        ProcessResult r = ws.ZstdCompress(config.ModelDir, folders, options.ZstdLevel, threads, archive);
        long stored = new FileInfo(archive).Length;
        Workspace.DeleteFolder(dir);
        return (r, stored);
    }

    /// <summary>
    /// Before a timed run: flush what earlier runs wrote (on a 2-core machine their writeback would otherwise
    /// steal CPU from this run, whichever tool it is), then either drop the page cache (cold runs) or read the
    /// run's inputs once (warm runs). The second matters on VMs that reclaim idle page cache within seconds
    /// (DAMON, balloons): one warm-up at the start does not keep a run's inputs cached until its turn comes.
    /// </summary>
    private void Settle(Func<IEnumerable<string>> inputs)
    {
        if (options.DropCache)
        {
            ws.DropCaches();
            return;
        }
        ws.Sync();
        Workspace.ReadThrough(inputs());
    }

    /// <summary>The files a restore of <paramref name="model"/> reads: its manifest and every object it needs.</summary>
    private IEnumerable<string> RestoreInputs(ModelId model)
    {
        var layout = new StoreLayout(config.StorageDir);
        Manifest manifest = Manifest.Parse(File.ReadAllBytes(layout.ManifestPath(model)), layout.ManifestPath(model));
        return manifest.NeededObjects().Select(layout.ObjectPath).Prepend(layout.ManifestPath(model));
    }

    /// <summary>The files a compress reads: every file of every listed model.</summary>
    private IEnumerable<string> CompressInputs() =>
        ModelList.Load(StandInModelList.Resolve(config).Path).Models
            .Select(config.ModelFolder)
            .Where(Directory.Exists)
            .SelectMany(folder => Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories));

    private void Add(Measurement m)
    {
        _results.Add(m);
        Console.WriteLine($"  {m.Mode,-8} {m.Tool,-6} {m.Model,-28} threads {m.Threads,2} run {m.Run}: {m.Bytes / 1e6,8:F1} MB in {m.Seconds,6:F2} s = {m.Gbps * 1000,6:F0} MB/s, peak RSS {m.PeakRssMb,6:F0} MB"
            + (m.CpuSeconds is double cpu ? $", CPU {cpu:F2} s" : "")
            + (m.StoredBytes is long s ? $", stored {s / 1e6:F1} MB" : ""));
        Progress?.Invoke(_results);
    }

    public static double? Mb(long? kib) => kib * 1024 / 1e6;
}
