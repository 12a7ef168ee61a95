using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Throughput.Tests;

/// <summary>
/// The test and bench builds copy only this platform's SkiaSharp native files (a RuntimeIdentifier in their
/// projects): drawing a plot proves the one they kept is the one this process loads.
/// </summary>
public class PlotWriterNativeTests
{
    [Fact]
    public void Write_WithOnlyThisPlatformsNativeFiles_WritesAPng()
    {
        using var dir = new TempDir();
        string path = dir.Combine("plot.png");
        Measurement[] runs =
        [
            new(Measurement.Restore, Measurement.ZipLlm, "a/b", 1, 1, 1_000_000_000, 1.0, null, null),
            new(Measurement.Restore, Measurement.ZipLlm, "a/b", 2, 1, 1_000_000_000, 0.6, null, null),
        ];
        PlotWriter.Write(path, runs, "test");
        byte[] png = File.ReadAllBytes(path);
        Assert.True(png.Length > 1000, $"{png.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        Assert.False(Directory.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", "win-x64")), "other platforms' native files were copied");
    }
}
