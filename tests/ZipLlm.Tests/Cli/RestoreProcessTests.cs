using ZipLlm.Cli;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Store;
using ZipLlm.Tests.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>The restore and verify verbs as real processes: damaged stores, two restores at once, few file handles.</summary>
[Trait("Category", "Slow")]
public class RestoreProcessTests
{
    // A hang (a FIFO read) fails the test instead of stalling the run.
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    public static TheoryData<string> DamageKinds => new(StoredModels.DamageKinds);

    [Theory]
    [MemberData(nameof(DamageKinds))]
    public async Task RestoreAndVerify_DamagedObject_ExitVerificationFailedNamingModelAndFile(string kind)
    {
        using var dir = new TempDir();
        StoredModels.Ingest(dir, ModelId.Parse("o/good"), StoredModels.SmallModel(20));
        ModelStore store = StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(21));
        StoredModels.Damage(StoredModels.TensorObject(store, ModelId.Parse("o/m")).Path, kind);
        string config = dir.Combine("config.json");

        CliResult restore = await CliProcess.RunAsync(["restore", config, "o/m", dir.Combine("out")], timeout: Timeout);
        Assert.True(restore.ExitCode == ExitCodes.VerificationFailed, $"exit {restore.ExitCode}: {restore.StandardError}");
        Assert.Contains("o/m: model.safetensors", restore.StandardError);
        Assert.Single(restore.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(StoredModels.Entries(dir.Combine("out")));

        // Verify reports the damage and goes on to the next model.
        CliResult verify = await CliProcess.RunAsync(["verify", config], timeout: Timeout);
        Assert.True(verify.ExitCode == ExitCodes.VerificationFailed, $"exit {verify.ExitCode}: {verify.StandardError}");
        Assert.Contains("o/m: model.safetensors", verify.StandardError);
        Assert.Contains("o/good: OK", verify.StandardError);
    }

    [Fact]
    public async Task Restore_TwoProcessesIntoOneOutput_EverySuccessLeavesExactFilesAndTheLoserFailsCleanly()
    {
        using var dir = new TempDir();
        StoredModels.Ingest(dir, ModelId.Parse("o/m"), folder =>
        {
            ModelFolders.WriteSafetensors(Path.Combine(folder, "model.safetensors"), ModelFolders.Bf16Layers(new Random(22), 4, 256));
            File.WriteAllText(Path.Combine(folder, "config.json"), "{}");
        });
        var expected = ModelFolders.Snapshot(dir.Combine("models", "o_m"));
        string config = dir.Combine("config.json");
        string output = dir.Combine("out");

        for (int round = 0; round < 4; round++)
        {
            Task<CliResult>[] runs = [.. Enumerable.Range(0, 2).Select(_ => CliProcess.RunAsync(["restore", config, "o/m", output, "--force"], timeout: Timeout))];
            foreach (CliResult result in await Task.WhenAll(runs))
            {
                if (result.ExitCode != 0)
                {
                    Assert.Equal(ExitCodes.IoError, result.ExitCode);
                    Assert.Contains("another zipllm restore is writing into", result.StandardError);
                    Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                }
            }
            Assert.Equal(expected, ModelFolders.Snapshot(output));
            Assert.Equal(StoredModels.Entries(dir.Combine("models", "o_m")), StoredModels.Entries(output));
        }
    }

    [Fact]
    public async Task RestoreAndVerify_ThousandsOfTensorsUnderLowOpenFileLimit_Succeed()
    {
        using var dir = new TempDir();
        StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.ManyTinyTensors(4, 1000));
        string config = dir.Combine("config.json");

        CliResult restore = await CliProcess.RunAsync(["restore", config, "o/m", dir.Combine("out"), "--threads", "8"], timeout: Timeout, openFileLimit: 200);
        Assert.True(restore.ExitCode == 0, restore.StandardError);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_m")), ModelFolders.Snapshot(dir.Combine("out")));

        CliResult verify = await CliProcess.RunAsync(["verify", config, "--threads", "8"], timeout: Timeout, openFileLimit: 200);
        Assert.True(verify.ExitCode == 0, verify.StandardError);
    }

    [Fact]
    public async Task Restore_ForceIntoTheHomeFolder_IsRefusedAndNothingDeleted()
    {
        using var dir = new TempDir();
        StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(23));
        dir.Write("home/.bashrc", "mine");

        CliResult result = await CliProcess.RunAsync(["restore", dir.Combine("config.json"), "o/m", dir.Combine("home"), "--force"],
            timeout: Timeout, environment: new Dictionary<string, string> { ["HOME"] = dir.Combine("home") });

        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        Assert.Contains("--force deletes every file", result.StandardError);
        Assert.Equal(["home/.bashrc"], StoredModels.Entries(dir.Combine("home")).Select(e => "home/" + e));
    }

    [Fact]
    public async Task Restore_ForceIntoTheModelFolder_IsRefusedAndNoModelDeleted()
    {
        using var dir = new TempDir();
        StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(26));
        dir.Write("models/o_other/config.json", "another model's");
        SortedSet<string> models = StoredModels.Entries(dir.Combine("models"));

        CliResult result = await CliProcess.RunAsync(["restore", dir.Combine("config.json"), "o/m", dir.Combine("models"), "--force"], timeout: Timeout);

        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        Assert.Contains("--force would delete", result.StandardError);
        Assert.Equal(models, StoredModels.Entries(dir.Combine("models")));
    }

    [Fact]
    public async Task Restore_ForceOverSymlinkedSubfolderAndOtherFiles_OutputHoldsExactlyTheModelAndLinkTargetUntouched()
    {
        using var dir = new TempDir();
        StoredModels.Ingest(dir, ModelId.Parse("o/m"), folder =>
        {
            StoredModels.SmallModel(24)(folder);
            Directory.CreateDirectory(Path.Combine(folder, "sub"));
            File.WriteAllText(Path.Combine(folder, "sub", "x"), "model's");
            File.WriteAllText(Path.Combine(folder, "config.json.zipllm-partial"), "a name of the model's");
        });
        dir.Write("outside/x", "outside");
        dir.Write("out/stale.safetensors", "another model's");
        Directory.CreateSymbolicLink(dir.Combine("out", "sub"), dir.Combine("outside"));

        CliResult result = await CliProcess.RunAsync(["restore", dir.Combine("config.json"), "o/m", dir.Combine("out"), "--force"], timeout: Timeout);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(ModelFolders.Snapshot(dir.Combine("models", "o_m")), ModelFolders.Snapshot(dir.Combine("out")));
        Assert.Equal(StoredModels.Entries(dir.Combine("models", "o_m")), StoredModels.Entries(dir.Combine("out")));
        Assert.Equal(["x"], StoredModels.Entries(dir.Combine("outside")));
        Assert.Equal("outside", File.ReadAllText(dir.Combine("outside", "x")));
    }

    [Fact]
    public async Task Restore_OutputIsAFile_ExitIoErrorAndFileKept()
    {
        using var dir = new TempDir();
        StoredModels.Ingest(dir, ModelId.Parse("o/m"), StoredModels.SmallModel(25));
        dir.Write("out", "a file");

        CliResult result = await CliProcess.RunAsync(["restore", dir.Combine("config.json"), "o/m", dir.Combine("out"), "--force"], timeout: Timeout);

        Assert.Equal(ExitCodes.IoError, result.ExitCode);
        Assert.Contains("not a folder", result.StandardError);
        Assert.Equal("a file", File.ReadAllText(dir.Combine("out")));
    }
}
