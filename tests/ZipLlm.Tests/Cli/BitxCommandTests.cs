using System.CommandLine;
using ZipLlm.Cli;
using ZipLlm.Safetensors;
using ZipLlm.Tests.Codecs;
using ZipLlm.Tests.TestSupport;
using ZipLlm.Tests.Tools.BitxFileTool;

namespace ZipLlm.Tests.Cli;

public class BitxCommandTests
{
    [Fact]
    public async Task Bitx_CompressThenDecompress_ReturnsZeroAndRebuildsFile()
    {
        using var files = new BitxTestFiles();
        (string basePath, string ftPath) = WritePair(files);
        string exp = files.PathOf("e.zst"), sm = files.PathOf("s.zst"), output = files.PathOf("out.safetensors");

        (int compressCode, string report) = await InvokeAsync("bitx", basePath, ftPath, "--compress", "--compressed-exp", exp, "--compressed-sm", sm, "--threads", "2", "--level", "1");
        (int decompressCode, _) = await InvokeAsync("bitx", basePath, "--decompress", "--compressed-exp", exp, "--compressed-sm", sm, "--output", output);

        Assert.Equal(ExitCodes.Success, compressCode);
        Assert.Equal(ExitCodes.Success, decompressCode);
        Assert.Equal(File.ReadAllBytes(ftPath), File.ReadAllBytes(output));
        Assert.Contains("tensors (1 paired", report);
        Assert.Contains("ratio:", report);
        Assert.Contains("MB/s", report);
    }

    [Fact]
    public async Task Bitx_MissingBase_ReturnsIoError()
    {
        using var files = new BitxTestFiles();
        (_, string ftPath) = WritePair(files);

        (int code, _) = await InvokeAsync("bitx", files.PathOf("nope"), ftPath, "--compress", "--compressed-exp", files.PathOf("e"), "--compressed-sm", files.PathOf("s"));

        Assert.Equal(ExitCodes.IoError, code);
        Assert.False(File.Exists(files.PathOf("e")));
    }

    [Theory]
    [InlineData("--compress", "--decompress")]
    [InlineData("--decompress", "--threads=1")]
    [InlineData("--threads=1", "--level=3")]
    public async Task Bitx_WrongModeOptions_ReturnsUsageError(string first, string second)
    {
        using var files = new BitxTestFiles();
        (string basePath, string ftPath) = WritePair(files);

        (int code, _) = await InvokeAsync("bitx", basePath, ftPath, first, second, "--compressed-exp", files.PathOf("e"), "--compressed-sm", files.PathOf("s"));

        Assert.Equal(ExitCodes.UsageError, code);
    }

    [Fact]
    public async Task Bitx_CorruptStream_ReturnsInvalidInput()
    {
        using var files = new BitxTestFiles();
        (string basePath, _) = WritePair(files);
        files.Write("e.zst", [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        files.Write("s.zst", [1, 2, 3, 4, 5, 6, 7, 8, 9]);

        (int code, _) = await InvokeAsync("bitx", basePath, "--decompress", "--compressed-exp", files.PathOf("e.zst"), "--compressed-sm", files.PathOf("s.zst"), "--output", files.PathOf("out"));

        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.False(File.Exists(files.PathOf("out")));
    }

    [Fact]
    public async Task Bitx_RealProcess_RoundTripsAndExitsZero()
    {
        using var files = new BitxTestFiles();
        (string basePath, string ftPath) = WritePair(files);
        string exp = files.PathOf("e.zst"), sm = files.PathOf("s.zst"), output = files.PathOf("out.safetensors");

        CliResult compress = await CliProcess.RunAsync(["bitx", basePath, ftPath, "--compress", "--compressed-exp", exp, "--compressed-sm", sm]);
        CliResult decompress = await CliProcess.RunAsync(["bitx", basePath, "--decompress", "--compressed-exp", exp, "--compressed-sm", sm, "--output", output]);
        CliResult missing = await CliProcess.RunAsync(["bitx", files.PathOf("nope"), "--decompress", "--compressed-exp", exp, "--compressed-sm", sm, "--output", output]);

        Assert.True(compress.ExitCode == ExitCodes.Success, compress.StandardError);
        Assert.True(decompress.ExitCode == ExitCodes.Success, decompress.StandardError);
        Assert.Contains("ratio:", compress.StandardOutput);
        Assert.Equal(File.ReadAllBytes(ftPath), File.ReadAllBytes(output));
        Assert.Equal(ExitCodes.IoError, missing.ExitCode);
        Assert.Single(missing.StandardError.Trim().Split('\n'));
    }

    private static (string Base, string Finetune) WritePair(BitxTestFiles files)
    {
        var random = new Random(11);
        byte[] w = TensorData.Sample(random, DType.BF16, 2 * 500);
        string basePath = files.Write("base.safetensors", BitxTestFiles.Safetensors(("w", DType.BF16, [500], w)));
        string ftPath = files.Write("ft.safetensors", BitxTestFiles.Safetensors(("w", DType.BF16, [500], TensorData.Perturb(random, w, DType.BF16))));
        return (basePath, ftPath);
    }

    private static async Task<(int Code, string Output)> InvokeAsync(params string[] args)
    {
        using var output = new StringWriter();
        int code = await Program.CreateRootCommand().Parse(args).InvokeAsync(new InvocationConfiguration { Output = output });
        return (code, output.ToString());
    }
}
