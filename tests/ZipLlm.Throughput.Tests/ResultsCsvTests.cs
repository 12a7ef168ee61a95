namespace ZipLlm.Throughput.Tests;

public class ResultsCsvTests
{
    private static readonly Measurement[] s_sample =
    [
        new(Measurement.Restore, Measurement.ZipLlm, "synthetic/llama-base", 1, 1, 267_300_000, 2.5, 81.9, null),
        new(Measurement.Restore, Measurement.ZipLlm, "synthetic/llama-base", 2, 1, 267_300_000, 1.25, 90.1, null),
        new(Measurement.Restore, Measurement.Zstd, "synthetic/llama-base", 2, 1, 267_300_000, 0.5, null, null),
        new(Measurement.Compress, Measurement.ZipLlm, Measurement.FamilyModel, 2, 3, 1_900_000_000, 10.0, 150.0, 600_000_000, 17.25),
    ];

    [Fact]
    public void Format_Parse_RoundTripsTheText()
    {
        string text = ResultsCsv.Format(Analysis.Derive(s_sample));

        List<Measurement> parsed = ResultsCsv.Parse(text, "results.csv");

        Assert.Equal(s_sample, parsed);
        Assert.Equal(text, ResultsCsv.Format(Analysis.Derive(parsed)));
    }

    [Fact]
    public void Format_WritesHeaderAndEmptyCellsForUnknowns()
    {
        string[] lines = ResultsCsv.Format(Analysis.Derive(s_sample)).Split('\n');

        Assert.Equal("mode,tool,model,threads,run,bytes,seconds,gbps,speedup_vs_1_thread,efficiency,peak_rss_mb,stored_bytes,cpu_seconds", lines[0]);
        Assert.Equal("restore,zipllm,synthetic/llama-base,2,1,267300000,1.2500,0.2138,2.000,1.000,90.1,,", lines[2]);
        // No 1-thread zstd run: no speedup; no RSS or CPU time measured: empty.
        Assert.Equal("restore,zstd,synthetic/llama-base,2,1,267300000,0.5000,0.5346,,,,,", lines[3]);
        Assert.EndsWith(",150.0,600000000,17.250", lines[4]);
    }

    [Fact]
    public void Parse_FileWrittenBeforeCpuTime_IsReadWithoutIt()
    {
        string text = "mode,tool,model,threads,run,bytes,seconds,gbps,speedup_vs_1_thread,efficiency,peak_rss_mb,stored_bytes\n"
            + "restore,zipllm,a/b,1,1,100,1.0,0.1,,,50.0,\n";

        Measurement m = Assert.Single(ResultsCsv.Parse(text, "old.csv"));

        Assert.Equal(50.0, m.PeakRssMb);
        Assert.Null(m.CpuSeconds);
    }

    [Fact]
    public void Parse_ForeignHeader_Throws()
    {
        var ex = Assert.Throws<InvalidDataException>(() => ResultsCsv.Parse("a,b,c\n1,2,3\n", "x.csv"));
        Assert.Contains("x.csv: line 1", ex.Message);
    }

    [Theory]
    [InlineData("restore,zipllm,a/b,1,1,100,1.0,0.1,,,,", "line 2 has 12 fields")]
    [InlineData("restore,zipllm,a/b,one,1,100,1.0,0.1,,,,,", "line 2")]
    [InlineData("restore,zipllm,a/b,1,1,-100,1.0,0.1,,,,,", "line 2")]
    [InlineData(",zipllm,a/b,1,1,100,1.0,0.1,,,,,", "mode column is empty")]
    public void Parse_MalformedRow_ThrowsNamingTheLine(string row, string expected)
    {
        string text = string.Join(',', ResultsCsv.Columns) + "\n" + row + "\n";
        var ex = Assert.Throws<InvalidDataException>(() => ResultsCsv.Parse(text, "r.csv"));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Parse_CrLfAndBlankLines_AreAccepted()
    {
        string text = ResultsCsv.Format(Analysis.Derive(s_sample)).Replace("\n", "\r\n") + "\r\n\r\n";
        Assert.Equal(s_sample, ResultsCsv.Parse(text, "r.csv"));
    }
}
