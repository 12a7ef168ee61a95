using System.CommandLine;
using System.Text;
using ZipLlm.Cli;
using ZipLlm.Config;
using ZipLlm.Synthetic;
using ZipLlm.Tests.TestSupport;

namespace ZipLlm.Tests.Cli;

public class ModelsCommandTests
{
    private const string ConfigJson = """{"model_dir": "models", "storage_dir": "store", "models_to_process": "test_models.txt", "base_ft_path": "base_ft.json"}""";

    private static async Task<(int ExitCode, string Output)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        int exitCode = await Program.CreateRootCommand().Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = new StringWriter() });
        return (exitCode, output.ToString());
    }

    [Fact]
    public async Task ModelsSetup_Synthetic_GeneratesFamilyAndPrintsOneLinePerModel()
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        (int exitCode, string output) = await RunAsync("models", "setup", config, "--synthetic", "--size", "tiny", "--seed", "5", "-v", "Warning");
        Assert.Equal(ExitCodes.Success, exitCode);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(8, lines.Length);
        Assert.StartsWith("synthetic/llama-base: base;", lines[0]);
        Assert.Contains("standalone", lines[^1]);
        Assert.True(Directory.Exists(dir.Combine("models", "my_org_llama-base-reupload")));
        Assert.Equal(8, ModelList.Load(dir.Combine("test_models.txt")).Models.Count);
        Assert.Equal(6, BaseFtMap.Load(dir.Combine("base_ft.json")).FinetunesOf(ModelId.Parse("synthetic/llama-base")).Count);
        Assert.Contains("seed 5", File.ReadAllText(dir.Combine("models", "synthetic_llama-base", "README.md")));
    }

    [Fact]
    public async Task ModelsSetup_ConfigMissingField_ExitsInvalidInput()
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json", """{"model_dir": "models"}""");
        (int exitCode, _) = await RunAsync("models", "setup", config, "--synthetic", "--size", "tiny", "-v", "None");
        Assert.Equal(ExitCodes.InvalidInput, exitCode);
        Assert.False(Directory.Exists(dir.Combine("models")));
    }

    [Fact]
    public async Task ModelsSetup_ConfigMissing_ExitsIoError()
    {
        using var dir = new TempDir();
        (int exitCode, _) = await RunAsync("models", "setup", dir.Combine("none.json"), "--synthetic", "-v", "None");
        Assert.Equal(ExitCodes.IoError, exitCode);
    }

    [Fact]
    public async Task ModelsSetup_UnknownSize_FailsToParse()
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        (int exitCode, _) = await RunAsync("models", "setup", config, "--synthetic", "--size", "huge");
        Assert.NotEqual(ExitCodes.Success, exitCode);
        Assert.False(Directory.Exists(dir.Combine("models")));
    }

    [Fact]
    public async Task ModelsSetup_Endpoint_DownloadsFromHub()
    {
        await using var hub = new FakeHub();
        hub.Add("org/base", ("model.safetensors", [1, 2]));
        hub.Add("org/ft", ("model.safetensors", [1, 3]), ("README.md", Encoding.UTF8.GetBytes("---\nbase_model: org/base\n---\n")));
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/base\norg/ft\n");
        (int exitCode, string output) = await RunAsync("models", "setup", config, "--endpoint", hub.Endpoint.AbsoluteUri, "-v", "Warning");
        Assert.Equal(ExitCodes.Success, exitCode);
        Assert.Contains("org/ft: finetune of org/base; downloaded 2 files", output);
        Assert.Equal(["org/ft"], BaseFtMap.Load(dir.Combine("base_ft.json")).FinetunesOf(ModelId.Parse("org/base")).Select(m => m.ToString()));
    }

    [Fact]
    public async Task ModelsSetup_UnknownModelOnHub_ExitsNonZeroWithoutFallback()
    {
        await using var hub = new FakeHub();
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/missing\n");
        (int exitCode, _) = await RunAsync("models", "setup", config, "--endpoint", hub.Endpoint.AbsoluteUri, "-v", "None");
        Assert.Equal(ExitCodes.IoError, exitCode);
        Assert.False(File.Exists(dir.Combine("base_ft.json")));
        Assert.Equal("org/missing\n", File.ReadAllText(dir.Combine("test_models.txt")));
    }

    [Fact]
    public async Task ModelsSetup_AsProcess_ExitsZeroAndLogsToStderr()
    {
        using var dir = new TempDir();
        string config = dir.Write("config.json", ConfigJson);
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json", "--synthetic", "--size", "tiny"], dir.Path);
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(8, result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("synthetic", result.StandardError);
        Assert.True(ModelSetupListIsSynthetic(dir.Combine("test_models.txt")));
    }

    private static bool ModelSetupListIsSynthetic(string path) =>
        File.ReadLines(path).First() == SyntheticFamily.ListMarker;
}
