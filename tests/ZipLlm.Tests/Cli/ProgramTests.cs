using ZipLlm.Cli;

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
}
