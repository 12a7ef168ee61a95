using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Throughput.Tests;

public class PlotCaptionTests
{
    private static Measurement M(int threads, int run, double seconds, string tool = Measurement.ZipLlm, string model = "a/b") =>
        new(Measurement.Restore, tool, model, threads, run, 267_000_000, seconds, 90, null);

    [Fact]
    public void Caption_LongRuns_NamesRunsBandsDataAndCacheWithoutWarning()
    {
        Measurement[] runs = [M(1, 1, 1.0), M(1, 2, 1.2), M(1, 3, 1.1), M(2, 1, 0.7), M(2, 2, 0.6), M(2, 3, 0.65)];

        List<string> caption = Analysis.Caption(Analysis.Summarize(runs), new RunContext("the models of list.txt, in /m", RunContext.Warm));

        Assert.Contains("median of 3 timed runs per point", caption[0]);
        Assert.Contains("min-max over those runs", caption[0]);
        Assert.Equal("Data: the models of list.txt, in /m (restore a/b 267 MB).", caption[1]);
        Assert.StartsWith("Warm cache", caption[2]);
        Assert.DoesNotContain(caption, line => line.StartsWith("Warning", StringComparison.Ordinal));
    }

    [Fact]
    public void Caption_RunUnderHalfASecond_WarnsNamingTheShortest()
    {
        Measurement[] runs = [M(1, 1, 0.8), M(2, 1, 0.45), M(2, 1, 0.2, tool: Measurement.Zstd)];

        List<string> caption = Analysis.Caption(Analysis.Summarize(runs), new RunContext("d", RunContext.Cold));

        Assert.StartsWith("Cold cache", caption[2]);
        string warning = Assert.Single(caption, line => line.StartsWith("Warning", StringComparison.Ordinal));
        Assert.Contains("2 of 3 points took under 0.5 s", warning);
        Assert.Contains("restore a/b zstd, 2 threads, 0.20 s", warning);
    }

    [Fact]
    public void Caption_DifferentRunCounts_GivesTheRange()
    {
        Measurement[] runs = [M(1, 1, 1), M(1, 2, 1), M(2, 1, 1), M(2, 2, 1), M(2, 3, 1)];

        Assert.Contains("median of 2-3 timed runs", Analysis.Caption(Analysis.Summarize(runs), RunContext.Unknown)[0]);
    }

    [Theory]
    [InlineData(RunContext.Warm)]
    [InlineData(RunContext.Cold)]
    [InlineData(RunContext.DropRefused)]
    public void RunContext_WrittenThenRead_IsTheSame(string cache)
    {
        using var dir = new TempDir();
        var context = new RunContext("the models of /x/list.txt (the synthetic family), in /x/models", cache);

        context.Write(dir.Path);

        Assert.Equal(context, RunContext.Read(dir.Path));
    }

    [Fact]
    public void RunContext_NoFile_IsUnknown()
    {
        using var dir = new TempDir();

        Assert.Equal(RunContext.Unknown, RunContext.Read(dir.Path));
        Assert.Contains("not recorded", Analysis.Caption([], RunContext.Unknown)[2]);
    }
}
