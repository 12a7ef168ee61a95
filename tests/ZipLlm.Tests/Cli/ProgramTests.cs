using ZipLlm.Cli;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

public class ProgramTests
{
    [Theory]
    [InlineData("restore")]
    [InlineData("no-such-verb")]
    [InlineData("compress", "a.json", "--threads", "many")]
    public async Task Main_MalformedCommandLine_ExitsWithUsageError(params string[] args) =>
        Assert.Equal(ExitCodes.UsageError, await Program.Main(args));

    [Fact]
    public async Task Main_Help_ExitsWithSuccess() =>
        Assert.Equal(ExitCodes.Success, await Program.Main(["compress", "--help"]));

    [Fact]
    public async Task Main_MissingConfig_ExitsWithIoError() =>
        Assert.Equal(ExitCodes.IoError, await Program.Main(["list", Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "config.json")]));

    [Fact]
    public async Task Main_CompressWithOneMissingModel_StoresTheOthersAndExitsWithPartialFailure()
    {
        using var dir = new TempDir();
        var family = CompressJobTests.WriteFamily(dir);
        File.AppendAllText(dir.Combine("test_models.txt"), "missing/model\n");

        Assert.Equal(ExitCodes.PartialFailure, await Program.Main(["compress", dir.Combine("config.json")]));
        Assert.Equal(family.Models.Count, Directory.EnumerateFiles(dir.Combine("store", "manifests"), "*.json", SearchOption.AllDirectories).Count());
    }
}
