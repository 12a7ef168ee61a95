namespace ZipLlm.Throughput;

/// <summary>
/// How a set of runs was made, for the plot's caption: which data, and whether the page cache was warm. Kept beside
/// results.csv (<see cref="FileName"/>, lines <c>key=value</c>) so that <c>--analyze-only</c> redraws the same caption.
/// </summary>
/// <param name="Data">The models measured, in words (their list and folder).</param>
/// <param name="Cache">One of <see cref="Warm"/>, <see cref="Cold"/>, <see cref="DropRefused"/>, <see cref="UnknownCache"/>.</param>
internal sealed record RunContext(string Data, string Cache)
{
    public const string FileName = "run_context.txt";

    /// <summary>One untimed warm-up run, then a sync and a read of its inputs before every timed run.</summary>
    public const string Warm = "warm";

    /// <summary>The page cache dropped before every timed run.</summary>
    public const string Cold = "cold";

    /// <summary>--drop-cache asked for, but not permitted here: no warm-up run and no drop either.</summary>
    public const string DropRefused = "drop-refused";

    public const string UnknownCache = "unknown";

    /// <summary>For results.csv files written before the context was recorded.</summary>
    public static RunContext Unknown => new("not recorded", UnknownCache);

    public string Format() => $"data={Data}\ncache={Cache}\n";

    public static RunContext Parse(string text)
    {
        string data = Unknown.Data;
        string cache = UnknownCache;
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = line.IndexOf('=');
            if (eq < 0)
            {
                continue;
            }
            string value = line[(eq + 1)..].Trim();
            switch (line[..eq].Trim())
            {
                case "data":
                    data = value;
                    break;
                case "cache":
                    cache = value is Warm or Cold or DropRefused ? value : UnknownCache;
                    break;
            }
        }
        return new RunContext(data, cache);
    }

    /// <summary>The context in <paramref name="outDir"/>, or <see cref="Unknown"/> when none was written.</summary>
    public static RunContext Read(string outDir)
    {
        string path = Path.Combine(outDir, FileName);
        return File.Exists(path) ? Parse(File.ReadAllText(path)) : Unknown;
    }

    public void Write(string outDir) => File.WriteAllText(Path.Combine(outDir, FileName), Format());
}
