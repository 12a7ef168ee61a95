using ZipLlm.Cli;
using ZipLlm.Domain;
using ZipLlm.Store;

namespace ZipLlm.Tests.Cli;

public class ProgressDisplayTests
{
    [Fact]
    public void FormatLine_ShowsNOfNBytesRateAndEta()
    {
        string line = ProgressDisplay.FormatLine("compress", 3, 8, new ByteProgress("org/model", 120_300_000, 267_000_000), 100e6);
        Assert.Equal("compress 3/8 org/model   45.1%  120.3 MB / 267.0 MB  100.0 MB/s  ETA 0:02", line);
    }

    [Fact]
    public void FormatLine_NoCountNoRate_LeavesThemOut()
    {
        string line = ProgressDisplay.FormatLine("restore", 1, 0, new ByteProgress("org/model", 500, 2_000), null);
        Assert.Equal("restore org/model   25.0%  500 B / 2.0 KB", line);
    }

    [Fact]
    public void FormatLine_Detail_FollowsTheItem()
    {
        string line = ProgressDisplay.FormatLine("download", 1, 2, new ByteProgress("org/model", 1_000_000, 4_000_000, "files 3/12"), 1e6);
        Assert.Equal("download 1/2 org/model  files 3/12   25.0%  1.0 MB / 4.0 MB  1.0 MB/s  ETA 0:03", line);
    }

    [Fact]
    public void RateMeter_SteadyWork_MeasuresItsRate()
    {
        var meter = new RateMeter(windowSeconds: 5, minimumSeconds: 1);
        meter.Add(0, 0);
        Assert.Null(meter.BytesPerSecond);
        for (int second = 1; second <= 20; second++)
        {
            meter.Add(second, second * 100_000_000L);
        }
        Assert.Equal(100e6, meter.BytesPerSecond!.Value, 1);
    }

    [Fact]
    public void RateMeter_DeduplicatedBurstAfterALongHash_DoesNotSpike()
    {
        // 10 s of steady work at 100 MB/s, then a 2.5 GB file hashed for 25 s (no report meanwhile: it is read whole
        // first) and credited at once because it was stored already. The bytes came at 100 MB/s all along.
        var meter = new RateMeter(windowSeconds: 5, minimumSeconds: 1);
        meter.Add(0, 0);
        for (int second = 1; second <= 10; second++)
        {
            meter.Add(second, second * 100_000_000L);
        }
        meter.Add(35, 3_500_000_000L);
        Assert.Equal(100e6, meter.BytesPerSecond!.Value, 1);
    }

    [Fact]
    public void RateMeter_WorkSlowsDown_ForgetsTheOldRateAfterTheWindow()
    {
        var meter = new RateMeter(windowSeconds: 5, minimumSeconds: 1);
        meter.Add(0, 0);
        long bytes = 0;
        for (int second = 1; second <= 10; second++)
        {
            meter.Add(second, bytes += 500_000_000);
        }
        for (int second = 11; second <= 30; second++)
        {
            meter.Add(second, bytes += 10_000_000);
        }
        Assert.Equal(10e6, meter.BytesPerSecond!.Value, 1);
    }
}
