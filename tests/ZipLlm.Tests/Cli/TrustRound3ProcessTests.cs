using ZipLlm.Cli;
using ZipLlm.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>
/// The third round of a hostile user's probes (issue 24), as real processes: disks out of space and inodes, inputs that
/// never end, stores inside stores. Each test is one probe, or a relative of it.
/// </summary>
public class TrustRound3ProcessTests
{
    [Fact]
    public async Task List_NoInodeLeftForTheStoreLock_ExitsIoErrorNamingTheLockAtOnce()
    {
        using var dir = new TempDir();
        using var disk = new TmpfsMount(4 << 20, inodes: 64);
        ModelStore.Open(disk.Combine("store"), create: true);
        File.Delete(disk.Combine("store", "locks", "store.lock"));
        Assert.True(disk.UseEveryInode() > 0);
        File.WriteAllText(dir.Combine("config.json"),
            $$"""{"model_dir": "models", "storage_dir": "{{disk.Combine("store")}}", "models_to_process": "m.txt", "base_ft_path": "b.json"}""");

        // Before, the ENOSPC of creating the lock file was read as another holder: list waited 30 minutes for nobody.
        CliResult result = await CliProcess.RunAsync(["list", dir.Combine("config.json")], timeout: TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == ExitCodes.IoError, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains(disk.Combine("store", "locks", "store.lock"), result.StandardError);
        Assert.Contains("No space left", result.StandardError);
    }
}
