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
        Assert.Equal(Enum.GetValues<SyntheticModelKind>().Length, lines.Length);
        Assert.StartsWith("synthetic/llama-base: base;", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("synthetic/mixed-f32: standalone", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("synthetic/llama-full-ft-chat: finetune of synthetic/llama-full-ft", StringComparison.Ordinal));
        Assert.True(Directory.Exists(dir.Combine("models", "my_org_llama-base-reupload")));
        Assert.False(File.Exists(dir.Combine("test_models.txt")));
        Assert.Equal(Enum.GetValues<SyntheticModelKind>().Length, ModelList.Load(dir.Combine("models", StandInModelList.FileName)).Models.Count);
        // Every kind but the base and the two unrelated models is a finetune of the base.
        // Every kind but the base, the two standalone models, and the two listed under the full finetune.
        Assert.Equal(Enum.GetValues<SyntheticModelKind>().Length - 5, BaseFtMap.Load(dir.Combine("base_ft.json")).FinetunesOf(ModelId.Parse("synthetic/llama-base")).Count);
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
        dir.Write("config.json", ConfigJson);
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json", "--synthetic", "--size", "tiny"], dir.Path);
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(Enum.GetValues<SyntheticModelKind>().Length, result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("SYNTHETIC MODELS", result.StandardError);
        Assert.Contains("asked for with --synthetic", result.StandardError);
    }

    [Fact]
    public async Task ModelsSetup_NoTokenAndNoHub_MakesSyntheticModelsUnderABannerAndLeavesTheListAlone()
    {
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        const string list = "meta-llama/Llama-3.2-1B\nunsloth/Llama-3.2-1B\n";
        dir.Write("test_models.txt", list);
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json", "--size", "tiny"], dir.Path, environment: Offline());
        Assert.True(result.ExitCode == 0, result.StandardError);
        string banner = result.StandardError[result.StandardError.IndexOf("SYNTHETIC MODELS", StringComparison.Ordinal)..];
        Assert.Contains("HF_TOKEN is not set", banner);
        Assert.Contains("cannot be reached", banner);
        Assert.Contains(StandInModelList.FileName, banner);
        Assert.Equal(list, File.ReadAllText(dir.Combine("test_models.txt")));

        CliResult compress = await CliProcess.RunAsync(["compress", "config.json"], dir.Path);
        Assert.True(compress.ExitCode == 0, compress.StandardError);
        Assert.Contains($"warning: Reading the synthetic family's list {dir.Combine("models", StandInModelList.FileName)} instead of", compress.StandardError);
        Assert.Contains("synthetic/llama-full-ft", compress.StandardError);
        Assert.DoesNotContain("meta-llama", compress.StandardError.Replace(dir.Combine("test_models.txt"), ""));
    }

    [Fact]
    public async Task ModelsSetup_TokenSetAndDownloadRefused_ExitsIoErrorWithoutSyntheticModels()
    {
        await using var hub = new FakeHub();
        hub.Add("org/base", ("model.safetensors", [1, 2]));
        hub.Gated.Add("org/base");
        using var dir = new TempDir();
        dir.Write("config.json", ConfigJson);
        dir.Write("test_models.txt", "org/base\n");
        var environment = new Dictionary<string, string> { ["HF_TOKEN"] = "not-the-token", ["HF_ENDPOINT"] = hub.Endpoint.AbsoluteUri };
        CliResult result = await CliProcess.RunAsync(["models", "setup", "config.json", "--size", "tiny"], dir.Path, environment: environment);
        Assert.Equal(ExitCodes.IoError, result.ExitCode);
        Assert.Contains("error: ", result.StandardError);
        Assert.Contains("access denied", result.StandardError);
        Assert.DoesNotContain("SYNTHETIC", result.StandardError);
        Assert.False(Directory.Exists(dir.Combine("models", "synthetic_llama-base")));
        Assert.False(File.Exists(dir.Combine("base_ft.json")));
    }

    /// <summary>No token (an empty one counts as none) and a hub address nothing answers on.</summary>
    private static Dictionary<string, string> Offline() => new()
    {
        ["HF_TOKEN"] = "",
        ["HUGGING_FACE_HUB_TOKEN"] = "",
        ["HF_ENDPOINT"] = HubTestOptions.ClosedPortEndpoint().AbsoluteUri,
    };
}
