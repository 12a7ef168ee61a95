using ZipLlm.Codecs.Zstd;
using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;
using ZipLlm.Tests.Store;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

public class ZstdBackendProcessTests
{
    [Fact]
    public async Task StoreWrittenWithOneBackend_RestoresExactlyWithTheOther()
    {
        using var dir = new TempDir();
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        string writer = ZstdContext.NativeAvailable ? "native" : "managed";
        var compress = await CliProcess.RunAsync(["compress", config], environment: new Dictionary<string, string> { [ZstdContext.BackendVariable] = writer });
        Assert.True(compress.ExitCode == 0, compress.StandardError);

        string ft = SyntheticFamily.IdOf(SyntheticModelKind.FullFinetune).ToString();
        var restore = await CliProcess.RunAsync(["restore", config, ft, dir.Combine("out"), "-v", "Debug"],
            environment: new Dictionary<string, string> { [ZstdContext.BackendVariable] = "managed" });
        Assert.True(restore.ExitCode == 0, restore.StandardError);
        Assert.Contains("zstd: managed ZstdSharp", restore.StandardError);
        Assert.Equal(ModelFolders.Snapshot(family.Get(SyntheticModelKind.FullFinetune).Folder), ModelFolders.Snapshot(dir.Combine("out")));
    }

    [Fact]
    public async Task UnknownBackend_IsAUsageErrorNamingTheVariable()
    {
        using var dir = new TempDir();
        CompressJobTests.WriteFamily(dir);
        var result = await CliProcess.RunAsync(["compress", dir.Combine("config.json")],
            environment: new Dictionary<string, string> { [ZstdContext.BackendVariable] = "fastest" });
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("ZIPLLM_ZSTD", result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("store", "manifests")) && Directory.EnumerateFiles(dir.Combine("store", "manifests"), "*", SearchOption.AllDirectories).Any());
    }
}
