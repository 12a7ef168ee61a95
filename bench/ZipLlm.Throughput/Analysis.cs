using System.Globalization;
using System.Text;

namespace ZipLlm.Throughput;

/// <summary>Medians over the runs of one (mode, tool, model, threads).</summary>
internal sealed record Summary(
    string Mode,
    string Tool,
    string Model,
    int Threads,
    int Runs,
    long Bytes,
    double MedianSeconds,
    double MedianGbps,
    double MinGbps,
    double MaxGbps,
    double Speedup,
    double Efficiency,
    double? MedianPeakRssMb,
    long? MedianStoredBytes,
    double? MedianCpuSecondsPerGb = null)
{
    /// <summary>Original bytes over stored bytes; null unless this is a compress.</summary>
    public double? Ratio => MedianStoredBytes is long stored && stored > 0 ? (double)Bytes / stored : null;
}

/// <summary>The pure arithmetic of the tool: medians, speedups, summaries, and the table printed at the end.</summary>
internal static class Analysis
{
    /// <summary>The median; the mean of the two middle values for an even count; NaN for none.</summary>
    public static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Where(double.IsFinite).Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>
    /// Adds speedup (throughput over the median 1-thread throughput of the same mode, tool and model)
    /// and efficiency (speedup over threads) to every measurement. Without 1-thread runs both are NaN.
    /// </summary>
    public static List<Row> Derive(IReadOnlyList<Measurement> measurements)
    {
        Dictionary<(string, string, string), double> oneThread = measurements
            .Where(m => m.Threads == 1)
            .GroupBy(m => (m.Mode, m.Tool, m.Model))
            .ToDictionary(g => g.Key, g => Median(g.Select(m => m.Gbps)));
        var rows = new List<Row>(measurements.Count);
        foreach (Measurement m in measurements)
        {
            double speedup = oneThread.TryGetValue((m.Mode, m.Tool, m.Model), out double baseline) && baseline > 0
                ? m.Gbps / baseline
                : double.NaN;
            rows.Add(new Row(m, speedup, speedup / m.Threads));
        }
        return rows;
    }

    /// <summary>One summary per (mode, tool, model, threads), in mode, model, tool (ours first), threads order.</summary>
    public static List<Summary> Summarize(IReadOnlyList<Measurement> measurements)
    {
        Dictionary<(string, string, string), double> oneThread = measurements
            .Where(m => m.Threads == 1)
            .GroupBy(m => (m.Mode, m.Tool, m.Model))
            .ToDictionary(g => g.Key, g => Median(g.Select(m => m.Gbps)));
        var summaries = new List<Summary>();
        foreach (var g in measurements.GroupBy(m => (m.Mode, m.Tool, m.Model, m.Threads)))
        {
            double median = Median(g.Select(m => m.Gbps));
            double speedup = oneThread.TryGetValue((g.Key.Mode, g.Key.Tool, g.Key.Model), out double baseline) && baseline > 0
                ? median / baseline
                : double.NaN;
            double[] rss = g.Where(m => m.PeakRssMb.HasValue).Select(m => m.PeakRssMb!.Value).ToArray();
            double[] stored = g.Where(m => m.StoredBytes.HasValue).Select(m => (double)m.StoredBytes!.Value).ToArray();
            double[] cpu = g.Where(m => m.CpuSeconds.HasValue && m.Bytes > 0).Select(m => m.CpuSeconds!.Value / (m.Bytes / 1e9)).ToArray();
            summaries.Add(new Summary(
                g.Key.Mode, g.Key.Tool, g.Key.Model, g.Key.Threads,
                Runs: g.Count(),
                Bytes: (long)Median(g.Select(m => (double)m.Bytes)),
                MedianSeconds: Median(g.Select(m => m.Seconds)),
                MedianGbps: median,
                MinGbps: g.Min(m => m.Gbps),
                MaxGbps: g.Max(m => m.Gbps),
                Speedup: speedup,
                Efficiency: speedup / g.Key.Threads,
                MedianPeakRssMb: rss.Length > 0 ? Median(rss) : null,
                MedianStoredBytes: stored.Length > 0 ? (long)Median(stored) : null,
                MedianCpuSecondsPerGb: cpu.Length > 0 ? Median(cpu) : null));
        }
        return summaries
            .OrderBy(s => s.Mode, StringComparer.Ordinal)
            .ThenBy(s => s.Model, StringComparer.Ordinal)
            .ThenBy(s => s.Tool == Measurement.ZipLlm ? 0 : 1)
            .ThenBy(s => s.Tool, StringComparer.Ordinal)
            .ThenBy(s => s.Threads)
            .ToList();
    }

    /// <summary>The zstd summary to compare <paramref name="ours"/> with: same mode, model and threads.</summary>
    public static Summary? Baseline(IReadOnlyList<Summary> summaries, Summary ours) =>
        ours.Tool == Measurement.Zstd
            ? null
            : summaries.FirstOrDefault(s => s.Tool == Measurement.Zstd && s.Mode == ours.Mode && s.Model == ours.Model && s.Threads == ours.Threads);

    /// <summary>The table printed at the end: medians per (mode, tool, model, threads) and the ratios against zstd.</summary>
    public static string FormatTable(IReadOnlyList<Summary> summaries)
    {
        string[] header = ["mode", "model", "tool", "thr", "runs", "MB", "s", "MB/s", "min-max MB/s", "speedup", "eff", "peak RSS MB", "stored MB", "ratio", "speed vs zstd", "size vs zstd", "CPU s/GB", "CPU vs zstd"];
        var rows = new List<string[]> { header };
        foreach (Summary s in summaries)
        {
            Summary? z = Baseline(summaries, s);
            rows.Add(
            [
                s.Mode, s.Model, s.Tool, I(s.Threads), I(s.Runs), F(s.Bytes / 1e6, "F1"), F(s.MedianSeconds, "F2"),
                F(s.MedianGbps * 1000, "F0"), F(s.MinGbps * 1000, "F0") + "-" + F(s.MaxGbps * 1000, "F0"),
                F(s.Speedup, "F2") + (double.IsFinite(s.Speedup) ? "x" : ""), F(s.Efficiency, "F2"),
                s.MedianPeakRssMb is double rss ? F(rss, "F0") : "-",
                s.MedianStoredBytes is long st ? F(st / 1e6, "F1") : "-",
                s.Ratio is double r ? F(r, "F2") + "x" : "-",
                z is null ? "-" : F(s.MedianGbps / z.MedianGbps, "F2") + "x",
                z?.MedianStoredBytes is long zs && s.MedianStoredBytes is long os && os > 0 ? F((double)os / zs, "F2") + "x" : "-",
                s.MedianCpuSecondsPerGb is double c ? F(c, "F2") : "-",
                z?.MedianCpuSecondsPerGb is double zc && s.MedianCpuSecondsPerGb is double oc && zc > 0 ? F(oc / zc, "F2") + "x" : "-",
            ]);
        }
        int[] widths = Enumerable.Range(0, header.Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var text = new StringBuilder();
        for (int r = 0; r < rows.Count; r++)
        {
            for (int c = 0; c < header.Length; c++)
            {
                // Text columns left-aligned, numbers right-aligned.
                text.Append(c < 3 ? rows[r][c].PadRight(widths[c]) : rows[r][c].PadLeft(widths[c]));
                text.Append(c == header.Length - 1 ? "" : "  ");
            }
            text.Append('\n');
            if (r == 0)
            {
                text.Append(new string('-', widths.Sum() + 2 * (widths.Length - 1))).Append('\n');
            }
        }
        text.Append("MB = 10^6 bytes. speedup: median throughput over the median 1-thread throughput of the same mode, tool and model; eff = speedup/threads.\n");
        text.Append("speed vs zstd: our MB/s over zstd's at the same thread count (>1 = faster). size vs zstd: our stored bytes over zstd's (<1 = smaller). ratio: original/stored.\n");
        text.Append("CPU s/GB: user+system seconds of the process and its children per GB moved, the figure least disturbed by other load; CPU vs zstd: ours over zstd's (<1 = less CPU).\n");
        return text.ToString();
    }

    /// <summary>Runs shorter than this are mostly process start-up (about 0.1 s for a JIT-compiled .NET program, milliseconds native) and page-cache effects.</summary>
    public const double ShortRunSeconds = 0.5;

    /// <summary>
    /// The lines under the plot: what a line and a band are, how many runs, the data, the cache, and a warning when
    /// some series ran so briefly that process start-up weighs in them.
    /// </summary>
    public static List<string> Caption(IReadOnlyList<Summary> summaries, RunContext context)
    {
        var lines = new List<string>();
        int[] runs = summaries.Select(s => s.Runs).Distinct().Order().ToArray();
        string runText = runs.Length == 0 ? "0" : runs.Length == 1 ? I(runs[0]) : $"{runs[0]}-{runs[^1]}";
        lines.Add($"Lines: the median of {runText} timed run{(runText == "1" ? "" : "s")} per point; shaded bands: min-max over those runs (zipllm). MB = 10^6 bytes, as zipllm prints.");
        string sizes = string.Join(", ", summaries
            .GroupBy(s => (s.Mode, s.Model))
            .Select(g => $"{g.Key.Mode} {g.Key.Model} {F(g.Max(s => s.Bytes) / 1e6, "F0")} MB"));
        lines.Add($"Data: {context.Data} ({sizes}).");
        lines.Add(context.Cache switch
        {
            RunContext.Cold => "Cold cache: the page cache was dropped before every timed run.",
            RunContext.Warm => "Warm cache: one untimed warm-up run, then a sync and a read of its inputs before every timed run.",
            RunContext.DropRefused => "Cache: --drop-cache was not permitted here, so the runs had neither a dropped cache nor a warm-up run.",
            _ => "Cache: not recorded (warm or cold).",
        });
        List<Summary> brief = summaries.Where(s => s.MedianSeconds < ShortRunSeconds).OrderBy(s => s.MedianSeconds).ToList();
        if (brief.Count > 0)
        {
            Summary shortest = brief[0];
            lines.Add($"Warning: {brief.Count} of {summaries.Count} points took under {ShortRunSeconds:F1} s (shortest: {shortest.Mode} {shortest.Model} {shortest.Tool}, " +
                $"{shortest.Threads} thread{(shortest.Threads == 1 ? "" : "s")}, {F(shortest.MedianSeconds, "F2")} s): process start-up weighs in them; measure a larger model.");
        }
        return lines;
    }

    private static string I(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string F(double value, string format) =>
        double.IsFinite(value) ? value.ToString(format, CultureInfo.InvariantCulture) : "-";
}
