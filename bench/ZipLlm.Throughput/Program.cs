using ZipLlm.Config;
using ZipLlm.Throughput;

const int ExitOk = 0, ExitFailed = 1, ExitUsage = 2;

BenchOptions options;
try
{
    options = BenchOptions.Parse(args, Environment.CurrentDirectory, Environment.ProcessorCount);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return ExitUsage;
}
if (options.Help)
{
    Console.WriteLine(BenchOptions.Usage);
    return ExitOk;
}

string csvPath = Path.Combine(options.OutDir, "results.csv");
string plotPath = Path.Combine(options.OutDir, "throughput.png");
try
{
    if (options.AnalyzeOnly)
    {
        Report(ResultsCsv.Read(csvPath));
        return ExitOk;
    }

    ZipLlmConfig config = ZipLlmConfig.Load(options.ConfigPath!);
    string cli = options.CliPath ?? DefaultCli();
    if (!File.Exists(cli))
    {
        Console.Error.WriteLine($"{cli} does not exist: build the CLI first (dotnet build -c Release) or pass --cli.");
        return ExitFailed;
    }
    using var ws = new Workspace(cli, options.OutDir);
    Console.CancelKeyPress += (_, _) => ws.Dispose();
    Console.WriteLine($"zipllm: {cli}; config {config.ConfigPath}; threads {string.Join(' ', options.Threads)}; {options.Runs} runs; "
        + (options.DropCache ? "cold cache (dropped before every run)" : "warm cache (one untimed warm-up run)"));
    Console.WriteLine(ws.HasZstd ? $"baseline: {ws.ZstdPath} -{options.ZstdLevel} over a tar stream" : "baseline: zstd, tar or bash is not on PATH: no zstd baseline");
    Console.WriteLine($"child output: {ws.LogFile}");

    if (options.MemoryCheck)
    {
        List<MemoryCheck.Result> results = new MemoryCheck(options, config, ws).Run();
        string memoryCsv = Path.Combine(options.OutDir, "memory.csv");
        File.WriteAllText(memoryCsv, MemoryCheck.FormatCsv(results));
        Console.WriteLine();
        Console.Write(MemoryCheck.FormatTable(results));
        Console.WriteLine($"wrote {memoryCsv}");
        return ExitOk;
    }

    // Beside results.csv, so that --analyze-only redraws the same caption.
    ModelListChoice list = StandInModelList.Resolve(config);
    var context = new RunContext($"the models of {list.Path}{(list.IsStandIn ? " (the synthetic family)" : "")}, in {config.ModelDir}",
        options.DropCache ? RunContext.Cold : RunContext.Warm);
    context.Write(options.OutDir);
    var runner = new ThroughputRunner(options, config, ws)
    {
        Progress = results => ResultsCsv.Write(csvPath, Analysis.Derive(results)),
    };
    if (options.Mode is BenchMode.Compress or BenchMode.Both)
    {
        runner.RunCompress();
    }
    if (options.Mode is BenchMode.Restore or BenchMode.Both)
    {
        runner.RunRestore();
    }
    ResultsCsv.Write(csvPath, Analysis.Derive(runner.Results));
    if (ws.DropRefused)
    {
        (context with { Cache = RunContext.DropRefused }).Write(options.OutDir);
    }
    Report(runner.Results);
    return ExitOk;
}
catch (Exception ex) when (ex is InvalidOperationException or InvalidDataException or IOException or ArgumentException or UnauthorizedAccessException)
{
    Console.Error.WriteLine("throughput: " + ex.Message);
    return ExitFailed;
}

void Report(IReadOnlyList<Measurement> results)
{
    if (results.Count == 0)
    {
        Console.WriteLine("No measurements.");
        return;
    }
    Console.WriteLine();
    Console.Write(Analysis.FormatTable(Analysis.Summarize(results)));
    PlotWriter.Write(plotPath, results, "ZipLLM vs zstd", RunContext.Read(options.OutDir));
    Console.WriteLine(options.AnalyzeOnly ? $"read {csvPath}; wrote {plotPath}" : $"wrote {csvPath} and {plotPath}");
}

static string DefaultCli()
{
    for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "ZipLlm.sln")))
        {
            return Path.Combine(dir.FullName, "src", "ZipLlm.Cli", "bin", "Release", "net10.0", "zipllm.dll");
        }
    }
    return "zipllm.dll";
}
