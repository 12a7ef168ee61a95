namespace ZipLlm.Throughput.Tests;

public class AnalysisTests
{
    private static Measurement M(string tool, int threads, int run, double seconds, string mode = Measurement.Restore, string model = "a/b", long bytes = 1_000_000_000, long? stored = null) =>
        new(mode, tool, model, threads, run, bytes, seconds, 100, stored);

    [Theory]
    [InlineData(new double[] { 3 }, 3)]
    [InlineData(new double[] { 3, 1, 2 }, 2)]
    [InlineData(new double[] { 4, 1, 3, 2 }, 2.5)]
    [InlineData(new double[] { 5, double.NaN, 1 }, 3)]
    public void Median_OddEvenAndNaN(double[] values, double expected) => Assert.Equal(expected, Analysis.Median(values));

    [Fact]
    public void Median_Empty_IsNaN() => Assert.True(double.IsNaN(Analysis.Median([])));

    [Fact]
    public void Derive_Speedup_IsOverTheMedianOneThreadRunOfTheSameSeries()
    {
        Measurement[] runs =
        [
            M(Measurement.ZipLlm, 1, 1, 1.0), M(Measurement.ZipLlm, 1, 2, 2.0), M(Measurement.ZipLlm, 1, 3, 1.25), // 1.0, 0.5, 0.8 GB/s: median 0.8
            M(Measurement.ZipLlm, 2, 1, 0.625), // 1.6 GB/s
            M(Measurement.Zstd, 1, 1, 0.5), M(Measurement.Zstd, 4, 1, 0.25), // 2 and 4 GB/s
            M(Measurement.ZipLlm, 2, 1, 0.5, model: "c/d"), // no 1-thread run of c/d
        ];

        List<Row> rows = Analysis.Derive(runs);

        Assert.Equal(1.25, rows[0].Speedup, 9);
        Assert.Equal(1.0, rows[2].Speedup, 9);
        Assert.Equal(2.0, rows[3].Speedup, 9);
        Assert.Equal(1.0, rows[3].Efficiency, 9);
        Assert.Equal(2.0, rows[5].Speedup, 9);
        Assert.Equal(0.5, rows[5].Efficiency, 9);
        Assert.True(double.IsNaN(rows[6].Speedup));
        Assert.True(double.IsNaN(rows[6].Efficiency));
    }

    [Fact]
    public void Summarize_CpuTime_IsTheMedianPerGb_AndComparedWithZstds()
    {
        Measurement[] runs =
        [
            new(Measurement.Compress, Measurement.ZipLlm, "family", 2, 1, 2_000_000_000, 1.0, 100, 1, CpuSeconds: 3.0),
            new(Measurement.Compress, Measurement.ZipLlm, "family", 2, 2, 2_000_000_000, 1.0, 100, 1, CpuSeconds: 5.0),
            new(Measurement.Compress, Measurement.ZipLlm, "family", 2, 3, 2_000_000_000, 1.0, 100, 1, CpuSeconds: 4.0),
            new(Measurement.Compress, Measurement.Zstd, "family", 2, 1, 2_000_000_000, 1.0, 100, 1, CpuSeconds: 8.0),
        ];

        List<Summary> summaries = Analysis.Summarize(runs);
        string table = Analysis.FormatTable(summaries);

        Assert.Equal(2.0, summaries[0].MedianCpuSecondsPerGb!.Value, 9);
        Assert.Equal(4.0, summaries[1].MedianCpuSecondsPerGb!.Value, 9);
        Assert.Contains("CPU s/GB", table);
        Assert.Contains("0.50x", table.Split('\n')[2]);
    }

    [Fact]
    public void Summarize_MediansRangeAndRatio()
    {
        Measurement[] runs =
        [
            M(Measurement.ZipLlm, 1, 1, 2.0, Measurement.Compress, "family", stored: 250_000_000),
            M(Measurement.ZipLlm, 1, 2, 1.0, Measurement.Compress, "family", stored: 250_000_000),
            M(Measurement.ZipLlm, 1, 3, 4.0, Measurement.Compress, "family", stored: 250_000_000),
            M(Measurement.ZipLlm, 2, 1, 1.0, Measurement.Compress, "family", stored: 250_000_000),
            M(Measurement.Zstd, 2, 1, 0.5, Measurement.Compress, "family", stored: 500_000_000),
        ];

        List<Summary> summaries = Analysis.Summarize(runs);

        Summary one = summaries[0];
        Assert.Equal((Measurement.ZipLlm, 1, 3), (one.Tool, one.Threads, one.Runs));
        Assert.Equal(2.0, one.MedianSeconds);
        Assert.Equal(0.5, one.MedianGbps, 9);
        Assert.Equal(0.25, one.MinGbps, 9);
        Assert.Equal(1.0, one.MaxGbps, 9);
        Assert.Equal(4.0, one.Ratio!.Value, 9);
        Summary two = summaries[1];
        Assert.Equal(2.0, two.Speedup, 9);
        Summary zstd = summaries[2];
        Assert.Equal(Measurement.Zstd, zstd.Tool);
        Assert.Same(zstd, Analysis.Baseline(summaries, two));
        Assert.Null(Analysis.Baseline(summaries, one));
        Assert.Null(Analysis.Baseline(summaries, zstd));
    }

    [Fact]
    public void FormatTable_ShowsRatiosAgainstZstd()
    {
        Measurement[] runs =
        [
            M(Measurement.ZipLlm, 2, 1, 1.0, Measurement.Compress, "family", stored: 250_000_000),
            M(Measurement.Zstd, 2, 1, 0.5, Measurement.Compress, "family", stored: 500_000_000),
        ];

        string[] lines = Analysis.FormatTable(Analysis.Summarize(runs)).Split('\n');

        Assert.StartsWith("mode", lines[0]);
        Assert.StartsWith("compress  family  zipllm", lines[2]);
        Assert.Contains("0.50x         0.50x", lines[2]);
        Assert.EndsWith("-            -", lines[2]); // no CPU time measured
        Assert.StartsWith("compress  family  zstd", lines[3]);
    }
}
