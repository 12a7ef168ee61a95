using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Jobs;
using ZipLlm.Store;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>
/// A synthetic family large enough that compress, restore and verify at one thread run for a while (the small
/// size, about 150 MB), generated once, and a store that holds all of it.
/// </summary>
public sealed class SignalFamilyFixture : IDisposable
{
    private readonly TempDir _dir = new();

    public SignalFamilyFixture()
    {
        Family = SyntheticFamily.Generate(_dir.Combine("models"), SyntheticSize.Small);
        Family.WriteModelList(_dir.Combine("test_models.txt"));
        Family.WriteBaseFt(_dir.Combine("base_ft.json"));
        FullConfig = ConfigWithStore("store-full");
        CompressReport report = new CompressJob(ZipLlmConfig.Load(FullConfig), NullLogger.Instance).Run();
        Assert.Empty(report.Failures);
    }

    internal TempDir Dir => _dir;

    internal SyntheticFamilyResult Family { get; }

    /// <summary>A config whose store holds every model of the family.</summary>
    internal string FullConfig { get; }

    /// <summary>Writes a config of the family with its own store <paramref name="store"/>, at one thread.</summary>
    internal string ConfigWithStore(string store)
    {
        string path = _dir.Combine($"config-{store}.json");
        File.WriteAllText(path,
            $$"""{"model_dir": "models", "storage_dir": "{{store}}", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json", "threads": 1}""");
        return path;
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>SIGINT and SIGTERM, sent to real processes mid-run, cancel the verb: it cleans up, says "Cancelled." and exits 130.</summary>
public class SignalProcessTests(SignalFamilyFixture fixture) : IClassFixture<SignalFamilyFixture>
{
    [Theory]
    [InlineData(Signals.SigInt)]
    [InlineData(Signals.SigTerm)]
    public async Task Compress_SignalMidRun_ExitsCancelledLeavesNoTempFilesAndListedModelsRestore(int signal)
    {
        string storeName = $"store-signal-{signal}-{Guid.NewGuid():N}";
        string config = fixture.ConfigWithStore(storeName);
        string store = fixture.Dir.Combine(storeName);
        using var run = new RunningCli(["compress", config, "--threads", "1"]);
        // Mid-run: the base's first objects are written, most of the family is still to do.
        Assert.True(Signals.WaitUntil(run.Process, () => CompressProcessTests.CountFiles(store) >= 3), $"compress ended first:\n{run.StandardError}");
        Signals.SendWhileStopped(run.Process, signal);

        CliResult result = await run.WaitAsync();
        Assert.True(result.ExitCode == 130, $"exit {result.ExitCode}:\n{result.StandardError}");
        Assert.Contains("Cancelled.", result.StandardError);
        Assert.DoesNotContain("Done:", result.StandardError);
        Assert.DoesNotContain("   at ", result.StandardError);
        // Temporary names carry the writer's pid: none of this process's may be left.
        string tmp = Path.Combine(store, "tmp");
        Assert.Empty(Directory.Exists(tmp) ? Directory.EnumerateFiles(tmp).Where(f => Path.GetFileName(f).Contains($".{run.Process.Id}.")) : []);
        int listed = CompressProcessTests.AssertEveryListedModelRestores(fixture.Dir, storeName, fixture.Family);
        Assert.True(listed < fixture.Family.Models.Count, $"all {listed} models were stored: the signal came too late to prove anything");
    }

    [Fact]
    public async Task Restore_SigtermMidRun_ExitsCancelledAndLeavesNoPartialOrStagingFiles()
    {
        string output = fixture.Dir.Combine("restore-" + Guid.NewGuid().ToString("N"));
        ModelId model = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune);
        using var run = new RunningCli(["restore", fixture.FullConfig, model.ToString(), output, "--threads", "1"]);
        // Mid-run: a file (or the staging folder) is being written.
        Assert.True(Signals.WaitUntil(run.Process, () => Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output, "*", SearchOption.AllDirectories).Any()),
            $"restore ended first:\n{run.StandardError}");
        Signals.SendWhileStopped(run.Process, Signals.SigTerm);

        CliResult result = await run.WaitAsync();
        Assert.True(result.ExitCode == 130, $"exit {result.ExitCode}:\n{result.StandardError}");
        Assert.Contains("Cancelled.", result.StandardError);
        Assert.DoesNotContain("Restored ", result.StandardError);
        string[] left = Directory.Exists(output) ? Directory.EnumerateFileSystemEntries(output, "*", SearchOption.AllDirectories).ToArray() : [];
        Assert.DoesNotContain(left, path => Path.GetFileName(path).Contains("zipllm", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Verify_SigintMidRun_ExitsCancelled()
    {
        using var run = new RunningCli(["verify", fixture.FullConfig, "--threads", "1"]);
        // Mid-run: the first model is verified, seven are still to do.
        Assert.True(run.WaitForError(": OK"), $"verify ended first:\n{run.StandardError}");
        Signals.SendWhileStopped(run.Process, Signals.SigInt);

        CliResult result = await run.WaitAsync();
        Assert.True(result.ExitCode == 130, $"exit {result.ExitCode}:\n{result.StandardError}");
        Assert.Contains("Cancelled.", result.StandardError);
        Assert.DoesNotContain("Verified ", result.StandardError);
    }
}
