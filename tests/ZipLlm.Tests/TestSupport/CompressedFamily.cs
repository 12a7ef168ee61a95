using ZipLlm.Synthetic;
using ZipLlm.Tests.Jobs;

namespace ZipLlm.Tests.TestSupport;

/// <summary>A store holding the tiny synthetic family, compressed by the CLI as a process.</summary>
internal static class CompressedFamily
{
    /// <summary>Writes the family and its config into <paramref name="dir"/> and runs <c>zipllm compress -q</c> on it.</summary>
    public static async Task<(SyntheticFamilyResult Family, string Config)> CreateAsync(TempDir dir)
    {
        SyntheticFamilyResult family = CompressJobTests.WriteFamily(dir);
        string config = dir.Combine("config.json");
        CliResult compress = await CliProcess.RunAsync(["compress", config, "-q"]);
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        return (family, config);
    }

    /// <summary>How many models the store in <paramref name="dir"/> holds (manifests on disk).</summary>
    public static int StoredModels(TempDir dir) =>
        Directory.EnumerateFiles(dir.Combine("store", "manifests"), "*.json", SearchOption.AllDirectories).Count();
}
