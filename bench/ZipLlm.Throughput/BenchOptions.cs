using System.Globalization;
using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Throughput;

/// <summary>What to measure: restore, compress, or both.</summary>
internal enum BenchMode
{
    Restore,
    Compress,
    Both,
}

/// <summary>
/// The command line of the throughput tool, the original ZipLLM script's interface:
/// <c>--threads 1 2 4 8 --config ../config.json [--mode restore|compress|both] [--models a/b c/d] [--runs 3]
/// [--analyze-only] [--drop-cache] [--out DIR] [--memory-check] [--cli PATH] [--zstd-level N]</c>.
/// </summary>
internal sealed record BenchOptions
{
    /// <summary>The models restored when <c>--models</c> is not given.</summary>
    public static readonly IReadOnlyList<ModelId> DefaultModels = [ModelId.Parse("synthetic/llama-base"), ModelId.Parse("synthetic/llama-full-ft")];

    public const int DefaultRuns = 3;
    public const int DefaultZstdLevel = 3;
    public const string DefaultOutFolder = "throughput_results";

    public IReadOnlyList<int> Threads { get; init; } = [];
    public string? ConfigPath { get; init; }
    public BenchMode Mode { get; init; } = BenchMode.Restore;
    public IReadOnlyList<ModelId> Models { get; init; } = DefaultModels;
    public bool ModelsGiven { get; init; }
    public int Runs { get; init; } = DefaultRuns;
    public bool AnalyzeOnly { get; init; }
    public bool DropCache { get; init; }
    public bool MemoryCheck { get; init; }
    public string OutDir { get; init; } = "";
    public string? CliPath { get; init; }
    public int ZstdLevel { get; init; } = DefaultZstdLevel;
    public bool Help { get; init; }

    public const string Usage = """
        Usage: throughput_analysis.sh --config CONFIG [options]

          --threads N [N ...]        thread counts to measure (default: 1 2 4 ... up to the core count)
          --config PATH              the zipllm config.json (relative to the working directory)
          --mode restore|compress|both   what to time (default: restore)
          --models ID [ID ...]       models to restore (default: synthetic/llama-base synthetic/llama-full-ft)
          --runs N                   timed runs per thread count (default: 3); memory check: runs per model, medians
          --out DIR                  where results.csv and throughput.png go (default: ./throughput_results)
          --drop-cache               drop the page cache before every timed run (needs root outside a container);
                                     default is a warm cache after one untimed warm-up run
          --analyze-only             redraw the plot and the summary from DIR/results.csv; runs nothing
          --memory-check             peak RSS of compress and restore on the base model and on a model twice
                                     its size, at each thread count; runs nothing else
          --zstd-level N             level of the zstd baseline (default: 3)
          --cli PATH                 zipllm to measure: native executable or .dll (default: the Release build of this checkout)
          -h, --help                 this text
        """;

    /// <summary>Parses <paramref name="args"/>; relative paths are resolved against <paramref name="workingDirectory"/>.</summary>
    /// <exception cref="ArgumentException">An option is unknown, repeated, lacks its value or has an invalid one.</exception>
    public static BenchOptions Parse(IReadOnlyList<string> args, string workingDirectory, int processorCount)
    {
        var options = new BenchOptions();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int i = 0;
        while (i < args.Count)
        {
            string name = args[i++];
            if (name is "-h" or "--help")
            {
                return options with { Help = true };
            }
            if (!name.StartsWith("--", StringComparison.Ordinal))
            {
                throw new ArgumentException($"Unexpected argument '{name}'.");
            }
            if (!seen.Add(name))
            {
                throw new ArgumentException($"{name} is given twice.");
            }
            switch (name)
            {
                case "--threads":
                    options = options with { Threads = ParseThreads(TakeMany(args, ref i, name)) };
                    break;
                case "--config":
                    options = options with { ConfigPath = Path.GetFullPath(TakeOne(args, ref i, name), workingDirectory) };
                    break;
                case "--mode":
                    options = options with { Mode = ParseMode(TakeOne(args, ref i, name)) };
                    break;
                case "--models":
                    var models = new List<ModelId>();
                    foreach (string model in TakeMany(args, ref i, name))
                    {
                        if (!ModelId.TryParse(model, out ModelId id, out string? problem))
                        {
                            throw new ArgumentException($"--models: '{model}' is not a model id: {problem}");
                        }
                        models.Add(id);
                    }
                    options = options with { Models = models.Distinct().ToList(), ModelsGiven = true };
                    break;
                case "--runs":
                    options = options with { Runs = ParsePositive(TakeOne(args, ref i, name), name, max: 1000) };
                    break;
                case "--out":
                    options = options with { OutDir = Path.GetFullPath(TakeOne(args, ref i, name), workingDirectory) };
                    break;
                case "--cli":
                    options = options with { CliPath = Path.GetFullPath(TakeOne(args, ref i, name), workingDirectory) };
                    break;
                case "--zstd-level":
                    options = options with { ZstdLevel = ParsePositive(TakeOne(args, ref i, name), name, max: 22) };
                    break;
                case "--analyze-only":
                    options = options with { AnalyzeOnly = true };
                    break;
                case "--drop-cache":
                    options = options with { DropCache = true };
                    break;
                case "--memory-check":
                    options = options with { MemoryCheck = true };
                    break;
                default:
                    throw new ArgumentException($"Unknown option {name}.");
            }
        }

        if (options.OutDir.Length == 0)
        {
            options = options with { OutDir = Path.GetFullPath(DefaultOutFolder, workingDirectory) };
        }
        if (options.Threads.Count == 0)
        {
            options = options with { Threads = DefaultThreads(processorCount) };
        }
        if (options.AnalyzeOnly && options.MemoryCheck)
        {
            throw new ArgumentException("--analyze-only and --memory-check exclude each other.");
        }
        if (!options.AnalyzeOnly && options.ConfigPath is null)
        {
            throw new ArgumentException("--config is required (except with --analyze-only).");
        }
        return options;
    }

    /// <summary>1, 2, 4, ... up to <paramref name="processorCount"/>, which is always included.</summary>
    public static IReadOnlyList<int> DefaultThreads(int processorCount)
    {
        var threads = new List<int>();
        for (int t = 1; t < processorCount; t *= 2)
        {
            threads.Add(t);
        }
        threads.Add(Math.Max(1, processorCount));
        return threads;
    }

    private static string TakeOne(IReadOnlyList<string> args, ref int i, string name)
    {
        if (i >= args.Count || args[i].StartsWith("--", StringComparison.Ordinal))
        {
            throw new ArgumentException($"{name} needs a value.");
        }
        return args[i++];
    }

    private static List<string> TakeMany(IReadOnlyList<string> args, ref int i, string name)
    {
        var values = new List<string>();
        while (i < args.Count && !args[i].StartsWith("--", StringComparison.Ordinal))
        {
            // "1,2,4" and "1 2 4" both work.
            values.AddRange(args[i++].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }
        if (values.Count == 0)
        {
            throw new ArgumentException($"{name} needs at least one value.");
        }
        return values;
    }

    private static List<int> ParseThreads(List<string> values)
    {
        var threads = new SortedSet<int>();
        foreach (string value in values)
        {
            threads.Add(ParsePositive(value, "--threads", max: 1024));
        }
        return threads.ToList();
    }

    private static int ParsePositive(string value, string name, int max)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || n > max)
        {
            throw new ArgumentException($"{name}: '{value}' is not a whole number from 1 to {max}.");
        }
        return n;
    }

    private static BenchMode ParseMode(string value) => value switch
    {
        "restore" => BenchMode.Restore,
        "compress" => BenchMode.Compress,
        "both" => BenchMode.Both,
        _ => throw new ArgumentException($"--mode: '{value}' is not restore, compress or both."),
    };
}
