using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Throughput.Tests;

public class ProcessMeterTests
{
    [Theory]
    [InlineData("5120\n", 5120L)]
    [InlineData("Command exited with non-zero status 3\n4096\n", 4096L)]
    [InlineData("Command terminated by signal 9\n70312\n", 70312L)]
    [InlineData("", null)]
    [InlineData("garbage\n", null)]
    public void ParsePeak_GnuTimeOutput_GivesTheLastLinesKib(string output, long? expected) => Assert.Equal(expected, ProcessMeter.ParsePeak(output));

    [Theory]
    [InlineData("0.52 0.10\n5120\n", 0.62)]
    [InlineData("Command exited with non-zero status 3\n1.00 0.25\n4096\n", 1.25)]
    [InlineData("4096\n", null)]
    [InlineData("", null)]
    public void ParseCpu_GnuTimeOutput_GivesUserPlusSystem(string output, double? expected)
    {
        double? cpu = ProcessMeter.ParseCpu(output);
        Assert.Equal(expected is null, cpu is null);
        if (expected is double e)
        {
            Assert.Equal(e, cpu!.Value, 9);
        }
    }

    [Fact]
    public void Run_SmallAndLargeCommands_MeasuresTheChildAlone()
    {
        if (!ProcessMeter.MeasuresMemory)
        {
            return; // GNU time is not installed: peak RSS is not measured here (the bench says so)
        }
        using var dir = new TempDir();
        string log = dir.Combine("runs.log");

        // A shell that exits at once: a few MB, far below the 29 MB a child forked from this .NET process started with.
        ProcessResult small = ProcessMeter.Run(["/bin/sh", "-c", "exit 3"], log);
        // dd reads 64 MiB into one buffer it allocated: its peak is that buffer.
        ProcessResult large = ProcessMeter.Run(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], log);

        Assert.Equal(3, small.ExitCode);
        Assert.InRange(small.PeakRssKb!.Value, 1, 12_000);
        Assert.Equal(0, large.ExitCode);
        Assert.InRange(large.PeakRssKb!.Value, 64 * 1024, 90 * 1024);
        Assert.Contains("$ dd if=/dev/zero", File.ReadAllText(log));
    }
}
