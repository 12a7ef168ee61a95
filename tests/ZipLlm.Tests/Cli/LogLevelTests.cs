using Microsoft.Extensions.Logging;
using ZipLlm.Cli;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

/// <summary>The log level: --verbosity, --quiet, or ZIPLLM_LOG, the flag beating the variable.</summary>
public class LogLevelTests
{
    [Theory]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("DEBUG", LogLevel.Debug)]
    [InlineData("info", LogLevel.Information)]
    [InlineData("Information", LogLevel.Information)]
    [InlineData("warn", LogLevel.Warning)]
    [InlineData("off", LogLevel.None)]
    [InlineData(" trace ", LogLevel.Trace)]
    public void TryParseLevel_NamesAndShortForms(string text, LogLevel expected)
    {
        Assert.True(Logging.TryParseLevel(text, out LogLevel level));
        Assert.Equal(expected, level);
    }

    [Theory]
    [InlineData("bogus")]
    [InlineData("2")]
    [InlineData("")]
    public void TryParseLevel_NotALevel_False(string text) => Assert.False(Logging.TryParseLevel(text, out _));

    [Theory]
    [InlineData(null, null, LogLevel.Information)]
    [InlineData(null, "debug", LogLevel.Debug)]
    [InlineData(LogLevel.Warning, "debug", LogLevel.Warning)]
    [InlineData(LogLevel.Trace, "bogus", LogLevel.Trace)]
    public void TryResolveLevel_FlagBeatsVariableBeatsInformation(LogLevel? flag, string? variable, LogLevel expected)
    {
        Assert.True(Logging.TryResolveLevel(flag, variable, out LogLevel level, out string? problem));
        Assert.Null(problem);
        Assert.Equal(expected, level);
    }

    [Fact]
    public async Task ZipllmLog_Debug_LogsDebugLinesAndFlagsBeatIt()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        var debug = new Dictionary<string, string> { [Logging.LevelVariable] = "debug" };

        CliResult fromEnvironment = await CliProcess.RunAsync(["compress", config], environment: debug);
        Assert.Equal(0, fromEnvironment.ExitCode);
        Assert.Contains("debug [", fromEnvironment.StandardError);

        CliResult flag = await CliProcess.RunAsync(["list", config, "-v", "warning"], environment: debug);
        Assert.Equal(0, flag.ExitCode);
        Assert.Equal("", flag.StandardError);

        CliResult quiet = await CliProcess.RunAsync(["verify", config, "-q"], environment: debug);
        Assert.Equal(0, quiet.ExitCode);
        Assert.Equal("", quiet.StandardError);

        CliResult plain = await CliProcess.RunAsync(["verify", config], environment: new Dictionary<string, string> { [Logging.LevelVariable] = "" });
        Assert.DoesNotContain("debug [", plain.StandardError);
        Assert.Contains("Verified", plain.StandardError);
    }

    [Fact]
    public async Task ZipllmLog_NotALevel_UsageErrorNamingIt()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        CliResult result = await CliProcess.RunAsync(["list", dir.Combine("config.json")], environment: new Dictionary<string, string> { [Logging.LevelVariable] = "loud" });
        Assert.Equal(ExitCodes.UsageError, result.ExitCode);
        Assert.Equal($"zipllm: {Logging.LevelVariable}='loud' is not a log level; use {Logging.LevelNames}\n", result.StandardError);
        Assert.Equal("", result.StandardOutput);
    }

    [Fact]
    public async Task Quiet_Compress_StoresEverythingAndSaysNothing()
    {
        using var dir = new TempDir();
        var family = CompressJobTests.WriteFamily(dir);
        CliResult result = await CliProcess.RunAsync(["compress", dir.Combine("config.json"), "--quiet"]);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.StandardError);
        Assert.Equal(family.Models.Count, Directory.EnumerateFiles(dir.Combine("store", "manifests"), "*.json", SearchOption.AllDirectories).Count());
    }
}
