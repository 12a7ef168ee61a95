using System.Globalization;
using System.Text;

namespace ZipLlm.Throughput;

/// <summary>
/// The results file: one row per timed run. Fields never hold commas or quotes (modes, tools, model
/// ids and numbers), so the format is plain comma-separated values with invariant-culture numbers;
/// an unknown value is an empty cell.
/// </summary>
internal static class ResultsCsv
{
    public static readonly string[] Columns =
    [
        "mode", "tool", "model", "threads", "run", "bytes", "seconds", "gbps",
        "speedup_vs_1_thread", "efficiency", "peak_rss_mb", "stored_bytes", "cpu_seconds",
    ];

    // Files written before cpu_seconds was measured end at stored_bytes; they are still read.
    private const int OldColumnCount = 12;

    public static string Format(IEnumerable<Row> rows)
    {
        var text = new StringBuilder();
        text.Append(string.Join(',', Columns)).Append('\n');
        foreach (Row row in rows)
        {
            Measurement m = row.M;
            string[] cells =
            [
                m.Mode, m.Tool, m.Model, Int(m.Threads), Int(m.Run), Int(m.Bytes),
                Num(m.Seconds, "F4"), Num(m.Gbps, "F4"), Num(row.Speedup, "F3"), Num(row.Efficiency, "F3"),
                m.PeakRssMb is double rss ? Num(rss, "F1") : "", m.StoredBytes is long stored ? Int(stored) : "",
                m.CpuSeconds is double cpu ? Num(cpu, "F3") : "",
            ];
            foreach (string cell in cells)
            {
                if (cell.AsSpan().IndexOfAny(",\"\n\r") >= 0)
                {
                    throw new ArgumentException($"CSV cell '{cell}' holds a separator.", nameof(rows));
                }
            }
            text.Append(string.Join(',', cells)).Append('\n');
        }
        return text.ToString();
    }

    public static void Write(string path, IEnumerable<Row> rows) => File.WriteAllText(path, Format(rows));

    /// <summary>
    /// Reads the measured columns back; gbps, speedup and efficiency are recomputed from them
    /// (<see cref="Analysis.Derive"/>), so a hand-edited or merged file stays consistent.
    /// </summary>
    /// <exception cref="InvalidDataException">The header is not this tool's, or a row is malformed; the message names the line.</exception>
    public static List<Measurement> Parse(string text, string fileName)
    {
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int columns = lines.Length == 0 ? 0
            : lines[0].Trim() == string.Join(',', Columns) ? Columns.Length
            : lines[0].Trim() == string.Join(',', Columns.Take(OldColumnCount)) ? OldColumnCount : 0;
        if (columns == 0)
        {
            throw new InvalidDataException($"{fileName}: line 1 is not the header '{string.Join(',', Columns)}'.");
        }
        var result = new List<Measurement>();
        for (int n = 1; n < lines.Length; n++)
        {
            string line = lines[n].Trim();
            if (line.Length == 0)
            {
                continue;
            }
            string[] f = line.Split(',');
            if (f.Length != columns)
            {
                throw new InvalidDataException($"{fileName}: line {n + 1} has {f.Length} fields, not {columns}.");
            }
            try
            {
                result.Add(new Measurement(
                    Mode: Text(f[0], "mode"),
                    Tool: Text(f[1], "tool"),
                    Model: Text(f[2], "model"),
                    Threads: int.Parse(f[3], NumberStyles.None, CultureInfo.InvariantCulture),
                    Run: int.Parse(f[4], NumberStyles.None, CultureInfo.InvariantCulture),
                    Bytes: long.Parse(f[5], NumberStyles.None, CultureInfo.InvariantCulture),
                    Seconds: double.Parse(f[6], NumberStyles.Float, CultureInfo.InvariantCulture),
                    PeakRssMb: f[10].Length == 0 ? null : double.Parse(f[10], NumberStyles.Float, CultureInfo.InvariantCulture),
                    StoredBytes: f[11].Length == 0 ? null : long.Parse(f[11], NumberStyles.None, CultureInfo.InvariantCulture),
                    CpuSeconds: columns <= 12 || f[12].Length == 0 ? null : double.Parse(f[12], NumberStyles.Float, CultureInfo.InvariantCulture)));
            }
            catch (FormatException ex)
            {
                throw new InvalidDataException($"{fileName}: line {n + 1}: {ex.Message}", ex);
            }
            catch (OverflowException ex)
            {
                throw new InvalidDataException($"{fileName}: line {n + 1}: {ex.Message}", ex);
            }
        }
        return result;
    }

    public static List<Measurement> Read(string path) => Parse(File.ReadAllText(path), path);

    private static string Text(string value, string column) =>
        value.Length > 0 ? value : throw new FormatException($"the {column} column is empty.");

    private static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Num(double value, string format) =>
        double.IsFinite(value) ? value.ToString(format, CultureInfo.InvariantCulture) : "";
}
