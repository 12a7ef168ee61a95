using ZipLlm.Cli;
using ZipLlm.Cli.Commands;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>Exit codes that follow the kind of failure: absurd thread counts, and compress runs where every model fails.</summary>
public class ExitCodeTests
{
    [Theory]
    [InlineData("536870912")]
    [InlineData("1025")]
    [InlineData("0")]
    [InlineData("-3")]
    public async Task Restore_ThreadsOptionOutOfRange_ExitsUsageErrorNamingTheRangeBeforeWritingAnything(string threads)
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        Assert.Equal(0, (await CliProcess.RunAsync(["compress", config])).ExitCode);

        string output = dir.Combine("out");
        CliResult result = await CliProcess.RunAsync(["restore", config, SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune).ToString(), output, "--threads", threads]);
        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        Assert.Contains($"--threads must be from 1 to {ZipLlmConfig.MaxThreads}, not {threads}", result.StandardError);
        Assert.DoesNotContain("capacity", result.StandardError);
        Assert.False(Directory.Exists(output));
    }

    [Theory]
    [InlineData("restore", "a/b/c", "\"a/b/c\" has more than one '/'")]
    [InlineData("verify", "noslash", "\"noslash\" is not of the form org/name (no '/')")]
    [InlineData("remove", "org/..", "\"org/..\" has an org or name of '.' or '..'")]
    public async Task Verb_InvalidModelId_ExitsUsageErrorWithTheReasonInOneLineBeforeTouchingTheStore(string verb, string id, string reason)
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json",
            """{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json"}""");
        string[] arguments = verb == "restore" ? [verb, config, id, dir.Combine("out")] : [verb, config, id];

        CliResult result = await CliProcess.RunAsync(arguments);

        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        // One line: an error, or (for an id the parser refuses) a usage error and the pointer to the verb's help.
        string[] lines = result.StandardError.Trim().Split('\n');
        Assert.EndsWith($"Invalid model id: {reason}", lines[0].TrimEnd('.'));
        Assert.True(lines.Length == 1 || (lines.Length == 2 && lines[1] == $"see 'zipllm {verb} --help'"), result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("out")));
        Assert.False(Directory.Exists(dir.Combine("store")));
    }

    [Fact]
    public async Task Compress_ConfigThreadsAbsurd_ExitsInvalidInputNamingTheFieldAndRangeBeforeAnyWork()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"threads\": 2", "\"threads\": 536870912"));

        CliResult result = await CliProcess.RunAsync(["compress", config]);
        Assert.Equal(ExitCodes.InvalidInput, result.ExitCode);
        Assert.Contains($"field \"threads\" must be an integer from 1 to {ZipLlmConfig.MaxThreads}, not 536870912", result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("store")));
    }

    [Fact]
    public async Task Compress_EveryModelFailsWritingTheStore_ExitsIoErrorAndLeavesNoTempFiles()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        // A file where each object folder (objects/00 .. objects/ff) would go: every object write fails with an
        // IOException from the file system, as on a full disk, for every model.
        ModelStore store = ModelStore.Open(dir.Combine("store"), create: true);
        for (int prefix = 0; prefix < 256; prefix++)
        {
            File.WriteAllText(Path.Combine(store.Layout.ObjectsDir, prefix.ToString("x2")), "");
        }

        Assert.Equal(ExitCodes.IoError, await Program.Main(["compress", dir.Combine("config.json")]));
        Assert.Empty(store.ReadAllManifests());
        Assert.Empty(Directory.EnumerateFiles(store.Layout.TempDir));
    }

    [Fact]
    public async Task Compress_FileSystemRefusesToGrowFiles_LeavesNoTempFiles()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        // A file-size limit of 512 bytes (with SIGXFSZ ignored, so a write past it fails with EFBIG, as a full disk
        // fails with ENOSPC): every object's temporary file fails while it is written and flushed, and again as it is closed.
        string cli = CliProcess.CliPath;
        string command = cli.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? $"exec dotnet '{cli}' compress '{dir.Combine("config.json")}'" : $"exec '{cli}' compress '{dir.Combine("config.json")}'";
        var start = new System.Diagnostics.ProcessStartInfo("/bin/sh") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"trap '' XFSZ; ulimit -f 1; {command}");
        // The runtime's write-xor-execute double mapping needs files of its own past that limit.
        start.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        using var process = System.Diagnostics.Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)));
        string errors = await stderr;

        Assert.True(process.ExitCode is not (0 or 1 or 130), $"exit {process.ExitCode}:\n{errors}");
        Assert.Empty(ModelStore.Open(dir.Combine("store"), create: false).ReadAllManifests());
        Assert.Empty(Directory.EnumerateFiles(dir.Combine("store", "tmp")));
    }

    [Fact]
    public async Task Compress_EveryModelMissing_ExitsIoError()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        Directory.Delete(dir.Combine("models"), recursive: true);

        Assert.Equal(ExitCodes.IoError, await Program.Main(["compress", dir.Combine("config.json")]));
    }

    [Fact]
    public async Task Compress_EveryModelMalformed_ExitsInvalidInput()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        foreach (string shard in Directory.EnumerateFiles(dir.Combine("models"), "*.safetensors", SearchOption.AllDirectories))
        {
            byte[] bytes = File.ReadAllBytes(shard);
            File.WriteAllBytes(shard, bytes[..(bytes.Length - 5)]);
        }

        Assert.Equal(ExitCodes.InvalidInput, await Program.Main(["compress", dir.Combine("config.json")]));
    }

    [Theory]
    [InlineData(0, "", ExitCodes.Success)]
    [InlineData(0, "io io", ExitCodes.IoError)]
    [InlineData(0, "invalid invalid", ExitCodes.InvalidInput)]
    [InlineData(0, "io invalid", ExitCodes.PartialFailure)]
    [InlineData(1, "io", ExitCodes.PartialFailure)]
    [InlineData(1, "invalid", ExitCodes.PartialFailure)]
    public void ExitCodeOf_StoredAndFailureKinds_FollowsTheKinds(int stored, string failures, int expected)
    {
        var results = Enumerable.Range(0, stored).Select(i => new IngestResult(ModelId.Parse($"org/m{i}"), false, 1, 1, TimeSpan.Zero, 1, 0, 0, 0, 0)).ToList();
        var failed = failures.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select((kind, i) => new CompressFailure(ModelId.Parse($"org/f{i}"), "reason", kind == "io" ? CompressFailureKind.Io : CompressFailureKind.InvalidInput)).ToList();
        Assert.Equal(expected, CompressCommand.ExitCodeOf(new CompressReport(results, failed)));
    }
}
